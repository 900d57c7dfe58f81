"""Faults inside a rollout's tick — a lock timeout, a dropped connection, a deadlock that outlasts
the retries — each followed by the rollout completing on its own: no agent answers (every row
ends at its result timeout), no worker restarts. The background work runs as production runs
it (tests.nodes.rollouts.background.background_until: the library's task runner and the sweep)."""

import logging
import threading
import time

import pytest
from django.db import connection, connections
from django_tasks.base import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from nodes.rollouts.models import Rollout, RolloutNode
from nodes.rollouts.plan import selection_check
from nodes.rollouts.services import rollout_create
from tests.factories import GiB, HostFactory, ImageFactory, TiB
from tests.nodes.rollouts.background import background_until, rollout_share_locked, state_of
from tests.nodes.rollouts.support import running_node
from tests.support import deadlock_partner

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def short_ticks(settings):
    settings.ROLLOUT_TICK_SECONDS = 1


@pytest.fixture
def rollout():
    """Two nodes, no canary, one batch, a 2 s result timeout, failures allowed: with silent
    agents it completes, both rows `failed` at their timeout."""
    spec = {"protocol": "eth", "min_cpu_cores": 2, "min_memory_bytes": GiB, "min_disk_bytes": GiB}
    v1, v2 = ImageFactory(version="1.0", **spec), ImageFactory(version="2.0", **spec)
    host = HostFactory(name="h1", cpu_cores=64, memory_bytes=64 * GiB, disk_bytes=TiB)
    for name in ("n1", "n2"):
        running_node(host=host, image=v1, name=name)
    selection = selection_check(image_id=v2.pk, canary=0, result_timeout_seconds=2, max_failures=5)
    rollout = rollout_create(selection=selection, start=True)
    background_until(lambda: statuses(rollout) == {"upgrading"}, what="both nodes upgrading")
    return rollout


def statuses(rollout) -> set:
    return set(RolloutNode.objects.filter(rollout=rollout).values_list("status", flat=True))


def completes_on_its_own(rollout) -> None:
    background_until(lambda: state_of(rollout) == "completed", seconds=30, what="the rollout completing")
    rows = RolloutNode.objects.filter(rollout=rollout).values_list("status", "reason")
    assert set(rows) == {("failed", "no result within 2 s")}


def failed_advances() -> list:
    return list(DBTaskResult.objects.filter(status=TaskResultStatus.FAILED).values_list("traceback", flat=True))


def injected(trigger, fault):
    """An execute wrapper running `fault(sql)` once, before the first statement `trigger(sql, params)`
    accepts, then the statement itself."""
    fired = threading.Event()

    def wrapper(execute, sql, params, many, context):
        if not fired.is_set() and trigger(sql, params):
            fired.set()
            fault(sql)
        return execute(sql, params, many, context)

    return wrapper, fired


def test_a_lock_timeout_inside_a_tick(rollout, caplog):
    """Another session holds the rollout's row FOR SHARE past lock_timeout while ticks run: the
    step fails (busy), logged with the rollout; the tick queued before it runs once the lock is
    gone, and the rollout completes."""
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '300ms'")
    try:
        with caplog.at_level(logging.WARNING, logger="nodes.rollouts"), rollout_share_locked(rollout.pk):
            background_until(lambda: failed_advances(), seconds=10, what="a tick failing on the lock")
        completes_on_its_own(rollout)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")
    assert "Busy" in failed_advances()[0]
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("rollout_step_failed")]
    assert lines and f"rollout={rollout.pk}" in lines[0] and "lock timeout" in lines[0], lines


def test_a_connection_dropped_at_the_first_statement_of_a_tick(rollout):
    """The worker's connection is terminated (pg_terminate_backend) as a tick starts, before it
    queued the next tick: the task fails and nothing is queued for the rollout — the sweep
    re-enqueues its advance, and it completes."""

    def terminate(_sql):
        victim = connection.connection.info.backend_pid
        other = connections.create_connection("default")
        try:
            with other.cursor() as cursor:
                cursor.execute("SELECT pg_terminate_backend(%s)", [victim])
        finally:
            other.close()

    def coalescing(sql, params):  # the advance's first statement
        return sql.startswith("UPDATE") and "coalesced" in str(params)

    time.sleep(1.1)  # the tick queued at the start is due
    wrapper, fired = injected(coalescing, terminate)
    with connection.execute_wrapper(wrapper):
        background_until(fired.is_set, seconds=10, what="the fault")
        background_until(lambda: failed_advances(), seconds=10, what="the tick failing")
        assert not DBTaskResult.objects.filter(status=TaskResultStatus.READY).exists()  # only the sweep can help
        completes_on_its_own(rollout)
    assert "OperationalError" in failed_advances()[0] or "InterfaceError" in failed_advances()[0]


def test_a_deadlock_inside_a_tick_that_outlasts_the_retries(rollout):
    """On each of the step's attempts, another transaction holds a row the step writes and then
    asks for the rollout's row the step holds: PostgreSQL aborts the step (deadlock_detected),
    three times; the step is busy, recorded on the rollout, and the rollout completes anyway."""
    row = RolloutNode.objects.filter(rollout=rollout).order_by("position").first()
    attempts = []

    def wrapper(execute, sql, params, many, context):
        if (
            len(attempts) < 3
            and "nodes_rollout" in sql
            and "FOR NO KEY UPDATE" in sql
            and "nodes_rolloutnode" not in sql
        ):
            locked = threading.Event()
            partner = threading.Thread(
                target=deadlock_partner,
                args=(("nodes_rolloutnode", row.pk), ("nodes_rollout", rollout.pk), locked),
            )
            partner.start()
            attempts.append(partner)
            assert locked.wait(5)
        return execute(sql, params, many, context)

    with connection.cursor() as cursor:
        cursor.execute("SET deadlock_timeout = '100ms'")
    try:
        time.sleep(2.1)  # both rows past their timeout: the next step writes them
        with connection.execute_wrapper(wrapper):
            background_until(lambda: failed_advances(), seconds=20, what="the step failing three times")
        for partner in attempts:
            partner.join(10)
        completes_on_its_own(rollout)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET deadlock_timeout")
    assert len(attempts) == 3
    assert "Busy" in failed_advances()[0]
    recorded = Rollout.objects.get(pk=rollout.pk)
    assert recorded.last_step_failed_at is not None and "deadlock detected" in recorded.last_step_error
    assert recorded.step_failures == 0  # later steps succeeded
