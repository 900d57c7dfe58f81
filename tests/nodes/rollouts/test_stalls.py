"""Background work that never stalls (issue 19): the five ways a rollout could stop moving
without a crash, each reproduced against real PostgreSQL with real commits (and, where the
background path is what matters, the real `manage.py db_worker`)."""

import threading

import pytest
from django.db import connection, connections
from django.utils import timezone
from django_tasks.base import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from nodes.agent.lifecycle import command_ack, command_result
from nodes.changes import node_upgrade
from nodes.models import Command, CommandKind, NodeLog
from nodes.rollouts.plan import selection_check
from nodes.rollouts.services import rollout_abort, rollout_create, rollout_resume, rollout_start
from tests.factories import GiB, HostFactory, ImageFactory, TiB
from tests.invariants import assert_counters_exact
from tests.nodes.rollouts.background import db_worker, rollout_share_locked, row_of, state_of, stop, wait_until
from tests.nodes.rollouts.support import drive, report, rows, running_node

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def images():
    spec = {"protocol": "eth", "min_cpu_cores": 2, "min_memory_bytes": GiB, "min_disk_bytes": GiB}
    return ImageFactory(version="1.0", **spec), ImageFactory(version="2.0", **spec), ImageFactory(version="3.0", **spec)


def fleet_of(images, count):
    host = HostFactory(name="h1", cpu_cores=64, memory_bytes=64 * GiB, disk_bytes=TiB)
    return [running_node(host=host, image=images[0], name=f"n{i}") for i in range(1, count + 1)]


def create(images, *, start=True, **options):
    options = {"canary": 0, "batch_size": 25, "pause_after_canary": False, **options}
    return rollout_create(selection=selection_check(image_id=images[1].pk, **options), start=start)


def ticks_due_now() -> None:
    """Time passes: the delayed ticks queued are due."""
    DBTaskResult.objects.filter(status=TaskResultStatus.READY).update(run_after=timezone.now())


def answer_all_but(skip_ids) -> None:
    """The agents of every open upgrade but `skip_ids` report success."""
    for command in Command.objects.filter(kind=CommandKind.NODE_UPGRADE, status__in=["pending", "acked"]):
        if command.pk not in skip_ids:
            report(command.pk, "succeeded")


# 1 ------------------------------------------------------------------------------------------


def test_a_tick_whose_step_fails_leaves_the_next_tick_and_the_timeout_still_applies(images):
    """The reviewer's reproduction: one node, no canary, a 2 s result timeout, ticks of 1 s, a
    silent agent, and another session holding the rollout's row FOR SHARE while a tick runs
    with lock_timeout=300ms: the tick's step fails (busy). The rollout must move on anyway."""
    fleet_of(images, 1)
    rollout = create(images, result_timeout_seconds=2, max_failures=2)
    worker = db_worker(DB_LOCK_TIMEOUT_MS="300")
    try:
        wait_until(lambda: row_of(rollout, "n1")[0] == "upgrading", worker=worker, what="n1 upgrading")
        with rollout_share_locked(rollout.pk):
            wait_until(
                lambda: DBTaskResult.objects.filter(status=TaskResultStatus.FAILED).exists(),
                worker=worker,
                what="a tick that fails on the lock",
            )
        wait_until(lambda: state_of(rollout) == "completed", seconds=20, worker=worker, what="completed")
    finally:
        stop(worker)
    assert row_of(rollout, "n1")[:2] == ("failed", "no result within 2 s")
    failed = DBTaskResult.objects.filter(status=TaskResultStatus.FAILED).first()
    assert "Busy" in failed.exception_class_path


# 2 ------------------------------------------------------------------------------------------


def test_a_busy_canary_is_replaced_by_the_next_ready_node(images):
    """4 nodes, canary 1, batches of 3, the first node upgraded by hand before start: the canary
    batch must hold one node that is actually upgraded, and pause after it."""
    nodes = fleet_of(images, 4)
    rollout = create(images, start=False, canary=1, batch_size=3, pause_after_canary=True)
    node_upgrade(node_id=nodes[0].pk, image_id=images[2].pk)  # n1: someone else's open command
    rollout_start(rollout_id=rollout.pk)

    rollout = drive(rollout)

    assert rollout.state == "paused" and rollout.reason == "paused after the canary batch"
    canary = {name: status for name, (batch, status) in rows(rollout).items() if batch == 1}
    assert canary == {"n2": "succeeded"}, rows(rollout)
    assert NodeLog.objects.filter(event="upgrade_started", source="rollout").count() == 1
    assert rows(rollout)["n1"] == (2, "pending")

    rollout_resume(rollout_id=rollout.pk)
    rollout = drive(rollout)
    assert rollout.state == "completed"
    assert {status for _, status in rows(rollout).values()} == {"succeeded"}
    assert_counters_exact()


def test_a_canary_batch_with_no_node_ready_never_pauses_with_nothing_upgraded(images):
    """Every node busy as the canary batch starts: there is no node to stand in, so the
    rollout does not pause "after the canary" having tested nothing."""
    nodes = fleet_of(images, 1)
    rollout = create(images, start=False, canary=1, batch_size=3, pause_after_canary=True)
    hand = node_upgrade(node_id=nodes[0].pk, image_id=images[2].pk)
    rollout_start(rollout_id=rollout.pk)

    rollout = drive(rollout)  # no node to stand in; n1 waits in batch 2; its agent ends the hand upgrade
    assert (rollout.state, rows(rollout)["n1"]) == ("running", (2, "pending"))
    ticks_due_now()
    rollout = drive(rollout)  # the tick finds n1 free: upgraded in batch 2

    assert hand is not None
    assert rollout.state == "completed", (rollout.state, rollout.reason)
    assert rows(rollout)["n1"][1] == "succeeded"


# 3 ------------------------------------------------------------------------------------------


def test_an_upgrade_that_waited_behind_a_retry_later_supersedes_the_pending_command(images):
    """A (the agent's retry_later) locks the node, host and command and returns the acked
    command to `pending`; B (an upgrade) waits for the node's lock meanwhile. When B gets it, the
    command is pending: B supersedes it rather than refusing node_busy."""
    host = HostFactory(cpu_cores=64, memory_bytes=64 * GiB, disk_bytes=TiB)
    node = running_node(host=host, image=images[0], name="n1")
    node_upgrade(node_id=node.pk, image_id=images[1].pk)
    command = Command.objects.get(node_id=node.pk, status="pending")
    command_ack(command_id=command.pk, host_id=host.pk)
    holding, go_on = threading.Event(), threading.Event()
    outcome, pids = {}, {}

    def hold_after_lock(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if "FOR NO KEY UPDATE OF n, h, c" in sql:
            holding.set()
            assert go_on.wait(20)
        return result

    def agent():
        try:
            with connection.execute_wrapper(hold_after_lock):
                command_result(command_id=command.pk, host_id=host.pk, outcome="retry_later", retry_after_seconds=60)
            outcome["agent"] = "ok"
        except Exception as error:
            outcome["agent"] = error
        finally:
            connection.close()

    def upgrader():
        try:
            connection.ensure_connection()
            pids["upgrader"] = connection.connection.info.backend_pid
            node_upgrade(node_id=node.pk, image_id=images[2].pk)
            outcome["upgrade"] = "ok"
        except Exception as error:
            outcome["upgrade"] = error
        finally:
            connection.close()

    a = threading.Thread(target=agent)
    a.start()
    try:
        assert holding.wait(10)
        b = threading.Thread(target=upgrader)
        b.start()
        watcher = connections.create_connection("default")
        try:
            with watcher.cursor() as cursor:

                def upgrader_waits():
                    if "upgrader" not in pids:
                        return False
                    cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pids["upgrader"]])
                    found = cursor.fetchone()
                    return found is not None and found[0] == "Lock"

                wait_until(upgrader_waits, seconds=10, what="the upgrade waiting for the node's lock")
        finally:
            watcher.close()
    finally:
        go_on.set()
        a.join(20)
    b.join(20)

    assert outcome == {"agent": "ok", "upgrade": "ok"}, outcome
    command.refresh_from_db()
    assert command.status == "superseded"
    newest = Command.objects.get(node_id=node.pk, status="pending")
    assert newest.payload["from"] == command.payload["from"]  # the host never ran the superseded one
    assert newest.payload["to"]["image_id"] == str(images[2].pk)
    assert_counters_exact()


# 4 ------------------------------------------------------------------------------------------


def test_rows_of_an_aborted_rollout_whose_agents_never_answer_end_at_their_timeout(images):
    fleet_of(images, 2)
    rollout = create(images, result_timeout_seconds=2, max_failures=5)
    worker = db_worker()
    try:
        wait_until(
            lambda: {row_of(rollout, n)[0] for n in ("n1", "n2")} == {"upgrading"}, worker=worker, what="upgrading"
        )
        rollout_abort(rollout_id=rollout.pk)
        wait_until(
            lambda: {row_of(rollout, n)[0] for n in ("n1", "n2")} == {"failed"},
            seconds=20,
            worker=worker,
            what="the rows timed out",
        )
    finally:
        stop(worker)
    assert row_of(rollout, "n1")[:2] == ("failed", "no result within 2 s")
    assert state_of(rollout) == "aborted"


# 5 ------------------------------------------------------------------------------------------


def test_a_node_deferred_behind_a_command_that_stays_open_is_skipped_at_the_deadline(images):
    """n1's host never answers someone else's command for it: n1 moves to batch 2, and batch 2
    does not wait for it past the rollout's result timeout."""
    nodes = fleet_of(images, 3)
    rollout = create(images, start=False, result_timeout_seconds=2, max_failures=5)
    node_upgrade(node_id=nodes[0].pk, image_id=images[2].pk)  # an offline host's command: never answered
    hand = Command.objects.get(node_id=nodes[0].pk, status="pending").pk
    rollout_start(rollout_id=rollout.pk)
    worker = db_worker()
    try:

        def completed():
            answer_all_but({hand})
            return state_of(rollout) == "completed"

        wait_until(completed, seconds=20, worker=worker, what="completed")
    finally:
        stop(worker)
    status, reason, batch = row_of(rollout, "n1")
    assert (status, batch) == ("skipped", 2)
    assert f"command {hand}" in reason and "2 s" in reason, reason
    assert {row_of(rollout, n)[0] for n in ("n2", "n3")} == {"succeeded"}
