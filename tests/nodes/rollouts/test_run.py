"""Running a rollout: every transition of §10 (and the refused ones), halting at exactly
max_failures, pause after the canary, resume after a halt, abort with upgrades in flight,
refusals at run time, deferral of busy nodes, result timeouts, deleted nodes."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from config.errors import InvalidState
from nodes.changes import node_delete, node_upgrade
from nodes.models import Command, CommandKind, Node, NodeLog
from nodes.rollouts.models import ACTIVE_STATES, TRANSITIONS, Rollout, RolloutNode, RolloutState
from nodes.rollouts.plan import selection_check
from nodes.rollouts.services import (
    rollout_abort,
    rollout_advance,
    rollout_create,
    rollout_pause,
    rollout_resume,
    rollout_start,
)
from tests.factories import GiB, HostFactory, ImageFactory, TiB, UserFactory
from tests.invariants import assert_counters_exact
from tests.nodes.rollouts.support import answer, drive, ready_tasks, rows, running_node, work

pytestmark = pytest.mark.django_db


@pytest.fixture
def images():
    v1 = ImageFactory(protocol="eth", version="1.0", min_cpu_cores=2, min_memory_bytes=GiB, min_disk_bytes=GiB)
    v2 = ImageFactory(protocol="eth", version="2.0", min_cpu_cores=3, min_memory_bytes=GiB, min_disk_bytes=GiB)
    return v1, v2


@pytest.fixture
def nodes(images):
    """Five nodes n1..n5 on v1, across two roomy hosts."""
    hosts = [HostFactory(name=f"h{i}", cpu_cores=64, memory_bytes=64 * GiB, disk_bytes=TiB) for i in (1, 2)]
    return [running_node(host=hosts[i % 2], image=images[0], name=f"n{i}") for i in range(1, 6)]


def create(images, *, start=True, actor=None, **options):
    options = {"canary": 1, "batch_size": 2, "pause_after_canary": False, **options}
    return rollout_create(selection=selection_check(image_id=images[1].pk, **options), start=start, actor=actor)


def upgrades_started() -> dict:
    counts = {}
    for name in NodeLog.objects.filter(event="upgrade_started").values_list("node_name", flat=True):
        counts[name] = counts.get(name, 0) + 1
    return counts


def test_a_rollout_pauses_after_the_canary_and_completes_after_resume(images, nodes):
    creator = UserFactory()
    rollout = create(images, pause_after_canary=True, actor=creator)
    # hosts ordered h1 (n2, n4), h2 (n1, n3, n5): batch 1 = n2, batch 2 = n4 n1, batch 3 = n3 n5
    assert rollouts_batches(rollout) == {"n2": 1, "n4": 2, "n1": 2, "n3": 3, "n5": 3}

    rollout = drive(rollout)

    assert rollout.state == "paused" and rollout.reason == "paused after the canary batch"
    assert rows(rollout)["n2"] == (1, "succeeded")
    assert {status for name, (batch, status) in rows(rollout).items() if batch > 1} == {"pending"}

    rollout_resume(rollout_id=rollout.pk)
    rollout = drive(rollout)

    assert rollout.state == "completed" and rollout.finished_at is not None
    assert {status for _, status in rows(rollout).values()} == {"succeeded"}
    assert upgrades_started() == {f"n{i}": 1 for i in range(1, 6)}
    logs = NodeLog.objects.filter(event="upgrade_started")
    assert set(logs.values_list("source", "actor")) == {("rollout", creator.pk)}
    assert set(Node.objects.values_list("image_id", "state")) == {(images[1].pk, "running")}
    assert not RolloutNode.objects.filter(holds_node=True).exists()
    assert_counters_exact()


def rollouts_batches(rollout):
    return {name: batch for name, (batch, _) in rows(rollout).items()}


def test_halts_at_exactly_max_failures_and_resumes_with_a_higher_limit(images, nodes):
    failing = {nodes[1].pk, nodes[3].pk}  # n2 (canary), n4 (batch 2)
    rollout = create(images, max_failures=2)

    rollout = drive(rollout, lambda node_id: "failed" if node_id in failing else "succeeded")

    assert rollout.state == "halted" and rollout.current_batch == 2
    assert "2 failed or rolled-back node(s) reached max_failures (2)" in rollout.reason
    assert rows(rollout)["n3"] == (3, "pending") and rows(rollout)["n5"] == (3, "pending")
    with pytest.raises(InvalidState) as refused:
        rollout_resume(rollout_id=rollout.pk)
    assert '"max_failures": 3' in refused.value.detail
    with pytest.raises(InvalidState):
        rollout_resume(rollout_id=rollout.pk, max_failures=2)

    rollout_resume(rollout_id=rollout.pk, max_failures=3)
    rollout = drive(rollout)

    assert rollout.state == "completed" and rollout.max_failures == 3
    assert upgrades_started() == {f"n{i}": 1 for i in range(1, 6)}
    assert_counters_exact()


def test_one_failure_below_the_limit_does_not_halt(images, nodes):
    rollout = create(images, max_failures=2)

    rollout = drive(rollout, lambda node_id: "failed" if node_id == nodes[1].pk else "succeeded")

    assert rollout.state == "completed"
    assert sorted(status for _, status in rows(rollout).values()) == ["failed"] + ["succeeded"] * 4


def test_a_rollback_counts_as_a_failure(images, nodes):
    rollout = create(images)

    rollout = drive(rollout, "rolled_back")

    assert rollout.state == "halted" and rollout.current_batch == 1
    assert rows(rollout)["n2"] == (1, "rolled_back")
    assert Node.objects.get(name="n2").image_id == images[0].pk  # back on v1
    assert_counters_exact()


def test_a_refusal_at_run_time_is_refused_not_failed(images, nodes):
    rollout = create(images, start=False)
    # The plan goes stale: n2's host fills up before the rollout starts.
    host = Node.objects.get(name="n2").host
    host.cpu_cores = host.node_cpu_cores
    host.save(update_fields=["cpu_cores"])
    rollout_start(rollout_id=rollout.pk)

    rollout = drive(rollout)

    assert rollout.state == "completed"
    # The canary batch holds one node actually upgraded (issue 19): refused n2 gives its place to
    # n4 (refused too, same full host), then to n1 of the other host.
    assert rows(rollout)["n2"] == (1, "refused") and rows(rollout)["n4"] == (1, "refused")
    assert rows(rollout)["n1"] == (1, "succeeded")
    refused = RolloutNode.objects.get(rollout=rollout, node_name="n2")
    assert "not enough CPU" in refused.reason
    assert "n2" not in upgrades_started()


def test_a_node_with_an_open_command_moves_to_the_next_batch(images, nodes):
    rollout = create(images, start=False, canary=0, batch_size=5)
    other = ImageFactory(protocol="eth", version="3.0", min_cpu_cores=2, min_memory_bytes=GiB, min_disk_bytes=GiB)
    node_upgrade(node_id=nodes[0].pk, image_id=other.pk)  # n1: pending command, upgrading
    rollout_start(rollout_id=rollout.pk)

    work()

    rollout.refresh_from_db()
    assert rollout.batches == 2
    assert rows(rollout)["n1"] == (2, "pending")
    assert "moved to batch 2" in RolloutNode.objects.get(rollout=rollout, node_name="n1").reason
    rollout = drive(rollout)  # the agents finish n1's other upgrade too, then batch 2 runs it
    assert rollout.state == "completed"
    assert rows(rollout)["n1"] == (2, "succeeded")
    assert Node.objects.get(name="n1").image_id == images[1].pk


def test_no_result_within_the_timeout_fails_the_row_and_a_late_result_still_applies(images, nodes):
    rollout = create(images, result_timeout_seconds=60, max_failures=5)
    work()  # the canary n2 is upgrading
    RolloutNode.objects.filter(rollout=rollout, node_name="n2").update(
        upgraded_at=timezone.now() - timedelta(seconds=61)
    )
    Rollout.objects.filter(pk=rollout.pk).update(tick_due_at=timezone.now())  # the tick is due

    rollout_advance(rollout_id=rollout.pk)

    row = RolloutNode.objects.get(rollout=rollout, node_name="n2")
    assert (row.status, row.reason) == ("failed", "no result within 60 s")
    answer("succeeded", only={nodes[1].pk})  # late: the node is running, the row stays failed
    row.refresh_from_db()
    assert row.status == "failed" and Node.objects.get(name="n2").state == "running"


def test_abort_with_upgrades_in_flight(images, nodes):
    rollout = create(images, canary=0, batch_size=2)
    work()  # batch 1: n2 and n4 upgrading

    rollout_abort(rollout_id=rollout.pk)
    answer("succeeded")
    work()

    rollout.refresh_from_db()
    assert rollout.state == "aborted" and rollout.finished_at
    assert rows(rollout)["n2"] == (1, "succeeded") and rows(rollout)["n1"] == (2, "pending")
    assert set(upgrades_started()) == {"n2", "n4"}
    # The aborted rollout let go of its nodes: a new one takes the rest.
    again = create(images)
    assert {name for name, (_, status) in rows(again).items() if status == "pending"} == {"n1", "n3", "n5"}


def test_pause_stops_new_upgrades_until_resumed(images, nodes):
    rollout = create(images, canary=0, batch_size=2)
    work()
    rollout_pause(rollout_id=rollout.pk)

    rollout = drive(rollout)

    assert rollout.state == "paused"
    assert set(upgrades_started()) == {"n2", "n4"}
    rollout_resume(rollout_id=rollout.pk)
    assert drive(rollout).state == "completed"


def test_a_node_deleted_during_the_rollout_is_skipped(images, nodes):
    rollout = create(images, canary=0, batch_size=2)
    work()  # n2, n4 upgrading

    node_delete(node_id=nodes[3].pk)  # n4, in flight
    node_delete(node_id=nodes[4].pk)  # n5, pending
    rollout = drive(rollout)

    assert rollout.state == "completed"
    assert rows(rollout)["n4"] == (1, "skipped") and rows(rollout)["n5"] == (3, "skipped")
    assert RolloutNode.objects.get(rollout=rollout, node_name="n5").reason == "deleted"
    assert_counters_exact()


def test_a_rollout_with_nothing_to_upgrade_completes_when_started(images):
    rollout = create(images)
    assert rollout.batches == 0

    assert drive(rollout).state == "completed"


def test_the_advance_is_enqueued_in_the_transaction_of_the_change(images, nodes):
    rollout = create(images, start=False)
    assert ready_tasks() == 0

    with pytest.raises(RuntimeError), transaction.atomic():
        rollout_start(rollout_id=rollout.pk)
        assert ready_tasks() == 1  # an INSERT in this transaction...
        raise RuntimeError
    assert ready_tasks() == 0  # ...gone with it
    rollout_start(rollout_id=rollout.pk)
    assert ready_tasks() == 1


def test_an_agent_result_enqueues_the_advance(images, nodes):
    create(images)
    work()
    assert ready_tasks() == 0

    answer("succeeded")

    assert ready_tasks() == 1


def test_a_running_rollout_keeps_one_delayed_tick(images, nodes):
    rollout = create(images)
    work()
    work()

    rollout.refresh_from_db()
    assert rollout.tick_due_at is not None
    from django_tasks_db.models import DBTaskResult

    assert DBTaskResult.objects.filter(status="READY", run_after__gt=timezone.now()).count() == 1


ACTIONS = {
    "start": lambda pk: rollout_start(rollout_id=pk),
    "pause": lambda pk: rollout_pause(rollout_id=pk),
    "resume": lambda pk: rollout_resume(rollout_id=pk, max_failures=100),
    "abort": lambda pk: rollout_abort(rollout_id=pk),
}


@pytest.mark.parametrize("state", [s.value for s in RolloutState])
@pytest.mark.parametrize("action", list(ACTIONS))
def test_every_action_in_every_state(images, nodes, state, action):
    rollout = create(images, start=False)
    Rollout.objects.filter(pk=rollout.pk).update(state=state, current_batch=1 if state != "planned" else 0)
    sources, target = TRANSITIONS[action]

    if state in sources:
        ACTIONS[action](rollout.pk)
        rollout.refresh_from_db()
        assert rollout.state == target
    else:
        with pytest.raises(InvalidState) as refused:
            ACTIONS[action](rollout.pk)
        assert refused.value.extra == {"state": state}
        assert Rollout.objects.get(pk=rollout.pk).state == state


def test_active_states_hold_their_nodes():
    assert set(ACTIVE_STATES) == {"planned", "running", "paused", "halted"}
    assert Command.objects.filter(kind=CommandKind.NODE_UPGRADE).count() == 0
