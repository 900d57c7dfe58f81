"""The tick and the sweep (nodes.rollouts.ticks): which rollouts need ticks, what the sweep
enqueues and what it costs an idle database, and how a failed step shows (log, /metrics, the
rollout's admin page)."""

import pytest
from django.db import OperationalError, connection
from django.urls import reverse
from django.utils import timezone
from django_tasks.base import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from config.errors import Busy
from nodes.rollouts.models import Rollout, RolloutNode
from nodes.rollouts.plan import selection_check
from nodes.rollouts.services import rollout_abort, rollout_advance, rollout_create, rollout_pause
from nodes.rollouts.ticks import rollout_sweep
from tests.admin.conftest import client_for, staff
from tests.factories import GiB, HostFactory, ImageFactory, TiB
from tests.nodes.rollouts.support import answer, work
from tests.nodes.rollouts.support import running_node as node_on
from tests.support import round_trips

pytestmark = pytest.mark.django_db(transaction=True)

METRICS = "s3cret-token"


@pytest.fixture
def images():
    spec = {"protocol": "eth", "min_cpu_cores": 2, "min_memory_bytes": GiB, "min_disk_bytes": GiB}
    v1, v2 = ImageFactory(version="1.0", **spec), ImageFactory(version="2.0", **spec)
    host = HostFactory(name="h1", cpu_cores=64, memory_bytes=64 * GiB, disk_bytes=TiB)
    for i in range(1, 4):
        node_on(host=host, image=v1, name=f"n{i}")
    return v1, v2


def create(images, **options):
    options = {"canary": 0, "batch_size": 1, "pause_after_canary": False, "max_failures": 5, **options}
    return rollout_create(selection=selection_check(image_id=images[1].pk, **options), start=True)


def queued() -> list:
    return list(DBTaskResult.objects.filter(status=TaskResultStatus.READY).values_list("args_kwargs", flat=True))


def forget_queued() -> None:
    """What a task that died before queuing its tick leaves: nothing queued."""
    DBTaskResult.objects.filter(status=TaskResultStatus.READY).delete()


def test_the_sweep_of_an_idle_database_is_one_statement(images):
    done = create(images, batch_size=3)
    work()
    answer("succeeded")
    work()
    assert Rollout.objects.get(pk=done.pk).state == "completed"

    with round_trips() as statements:
        assert rollout_sweep() == []

    assert len(statements) == 1 and statements[0].startswith("SELECT"), statements


def test_the_sweep_enqueues_the_advance_of_rollouts_that_need_one_and_have_none(images):
    running = create(images)
    work()  # n1 upgrading, its tick queued
    with round_trips() as statements:
        assert rollout_sweep() == []  # its tick is queued
    assert len(statements) == 2, statements
    forget_queued()

    assert rollout_sweep() == [running.pk]
    assert len(queued()) == 1
    assert rollout_sweep() == []  # queued now

    rollout_pause(rollout_id=running.pk)  # paused with n1 upgrading: its timeout must still apply
    forget_queued()
    assert rollout_sweep() == [running.pk]
    answer("succeeded")  # n1 ends: the paused rollout needs no tick any more
    forget_queued()
    assert rollout_sweep() == []


def test_an_aborted_rollout_ticks_until_its_last_row_ends(images):
    rollout = create(images, result_timeout_seconds=60)
    work()
    rollout_abort(rollout_id=rollout.pk)
    work()
    assert queued(), "the aborted rollout with a row upgrading keeps a tick"
    RolloutNode.objects.filter(rollout=rollout, status="upgrading").update(
        upgraded_at=timezone.now() - timezone.timedelta(seconds=61)
    )
    Rollout.objects.filter(pk=rollout.pk).update(tick_due_at=timezone.now())  # the tick is due
    DBTaskResult.objects.filter(status=TaskResultStatus.READY).update(run_after=timezone.now())
    work()
    assert set(RolloutNode.objects.filter(rollout=rollout).values_list("status", flat=True)) == {"failed", "pending"}
    DBTaskResult.objects.filter(status=TaskResultStatus.READY).update(run_after=timezone.now())
    work()
    assert not queued() and rollout_sweep() == []  # nothing left to wait for: no more ticks


def refusing_the_rollout_lock(execute, sql, params, many, context):
    if sql.startswith("SELECT") and '"nodes_rollout"' in sql and "FOR NO KEY UPDATE" in sql:
        raise OperationalError("injected: the rollout's lock refused")
    return execute(sql, params, many, context)


def test_a_failed_step_is_logged_counted_and_shown_on_the_rollout_page(images, client, settings, caplog):
    settings.METRICS_TOKEN = METRICS
    rollout = create(images)
    work()
    forget_queued()

    with connection.execute_wrapper(refusing_the_rollout_lock), pytest.raises(Busy):
        rollout_advance(rollout_id=rollout.pk)

    assert len(queued()) == 1  # the next tick, queued before the step
    failed = Rollout.objects.get(pk=rollout.pk)
    assert failed.step_failures == 1 and failed.last_step_failed_at is not None
    assert (
        failed.last_step_error.startswith("busy: ") and "injected: the rollout's lock refused" in failed.last_step_error
    )
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("rollout_step_failed"))
    assert f"rollout={rollout.pk}" in line and "injected" in line
    metrics = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {METRICS}").content.decode()
    assert "nodefleet_rollouts_step_failing 1.0" in metrics
    admin = client_for(staff("nodes.view_rollout"))
    page = admin.get(reverse("admin:nodes_rollout_change", args=[rollout.pk])).content.decode()
    assert "Last step failed at" in page and "injected: the rollout&#x27;s lock refused" in page
    assert "1 step in a row; the next tick tries again" in page

    rollout_advance(rollout_id=rollout.pk)  # the next step succeeds

    assert Rollout.objects.get(pk=rollout.pk).step_failures == 0
    page = admin.get(reverse("admin:nodes_rollout_change", args=[rollout.pk])).content.decode()
    assert "Last step failed at" in page and "later steps succeeded" in page
    metrics = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {METRICS}").content.decode()
    assert "nodefleet_rollouts_step_failing 0.0" in metrics
