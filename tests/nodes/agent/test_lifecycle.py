"""nodes.agent.lifecycle: every row of §9's table (node, counters, Command, NodeLog), idempotency,
retry_later, cancel, node_busy and supersede, and the state-machine tables walked whole."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from config.errors import CommandClosed, InvalidInput, InvalidState, NodeBusy, NotFound
from config.http.metrics import AGENT_RESULTS
from config.units import BIGINT_MAX
from hosts.models import Host
from nodes.agent.lifecycle import command_ack, command_cancel, command_result
from nodes.changes import node_delete, node_upgrade, node_upgrade_plan
from nodes.models import (
    COMMAND_TRANSITIONS,
    NODE_TRANSITIONS,
    Command,
    CommandStatus,
    Node,
    NodeLog,
    NodeState,
    command_status_transition,
    node_state_transition,
)
from tests.factories import GiB, HostFactory, ImageFactory, ImagePropertyFactory, TiB, place_node, report
from tests.invariants import assert_counters_exact
from tests.support import fleet_snapshot

pytestmark = pytest.mark.django_db


def allocation(obj):
    return (obj.cpu_cores, obj.memory_bytes, obj.disk_bytes)


def counters(host):
    host.refresh_from_db()
    return (host.node_count, host.node_cpu_cores, host.node_memory_bytes, host.node_disk_bytes)


def open_command(node) -> Command:
    return Command.objects.get(node_id=node.pk, status__in=["pending", "acked"])


def last_log(node) -> NodeLog:
    return NodeLog.objects.filter(node_id=node.pk).order_by("-id").first()


@pytest.fixture
def host():
    return HostFactory(cpu_cores=32, memory_bytes=128 * GiB, disk_bytes=4 * TiB)


@pytest.fixture
def images():
    small = ImageFactory(min_cpu_cores=2, min_memory_bytes=8 * GiB, min_disk_bytes=500 * GiB)
    ImagePropertyFactory(image=small, key="archive", default_value="off", add_disk_bytes=1 * TiB)
    big = ImageFactory(min_cpu_cores=8, min_memory_bytes=32 * GiB, min_disk_bytes=1 * TiB)
    ImagePropertyFactory(image=big, key="archive", default_value="off", add_disk_bytes=2 * TiB)
    third = ImageFactory(min_cpu_cores=4, min_memory_bytes=16 * GiB, min_disk_bytes=1 * TiB)
    return small, big, third


@pytest.fixture
def upgrading(host, images):
    """A running node on `small` (archive on) upgraded to `big`: its upgrade command pending."""
    small, big, _ = images
    node = place_node(host=host, image=small, properties={"archive": "on"})
    node_upgrade(node_id=node.pk, image_id=big.pk)
    node.refresh_from_db()
    return node


# ---------------------------------------------------------------------------------------------
# §9's table, row by row


def test_create_succeeded_makes_the_node_running(host, images):
    node = place_node(host=host, image=images[0], running=False)
    assert node.state == "creating"

    change = report(node, "succeeded", message="booted")

    node.refresh_from_db()
    assert (node.state, change.command.status, change.changed) == ("running", "succeeded", True)
    command = Command.objects.get(pk=change.command.pk)
    assert (command.status, command.message, command.finished_at is not None) == ("succeeded", "booted", True)
    log = last_log(node)
    assert (log.event, log.message, log.command_id, log.actor) == ("create_succeeded", "booted", command.pk, None)
    assert counters(host) == (1, 2, 8 * GiB, 500 * GiB)
    assert_counters_exact()


def test_create_failed_makes_the_node_failed_and_keeps_its_allocation(host, images):
    node = place_node(host=host, image=images[0], running=False)

    report(node, "failed", message="disk full")

    node.refresh_from_db()
    assert (node.state, allocation(node)) == ("failed", (2, 8 * GiB, 500 * GiB))
    assert Command.objects.get(node_id=node.pk).status == "failed"
    assert (last_log(node).event, last_log(node).message) == ("create_failed", "disk full")
    assert counters(host) == (1, 2, 8 * GiB, 500 * GiB)
    assert_counters_exact()


def test_upgrade_succeeded_makes_the_node_running_on_the_to_side(host, images, upgrading):
    _, big, _ = images

    report(upgrading, "succeeded")

    upgrading.refresh_from_db()
    assert (upgrading.state, upgrading.image_id) == ("running", big.pk)
    assert allocation(upgrading) == (8, 32 * GiB, 3 * TiB)
    assert Command.objects.get(node_id=upgrading.pk, kind="node_upgrade").status == "succeeded"
    assert last_log(upgrading).event == "upgrade_succeeded"
    assert counters(host) == (1, 8, 32 * GiB, 3 * TiB)
    assert_counters_exact()


def test_upgrade_failed_makes_the_node_failed_on_the_to_side(host, images, upgrading):
    _, big, _ = images

    report(upgrading, "failed", message="image pull failed")

    upgrading.refresh_from_db()
    assert (upgrading.state, upgrading.image_id, allocation(upgrading)) == ("failed", big.pk, (8, 32 * GiB, 3 * TiB))
    assert (last_log(upgrading).event, last_log(upgrading).message) == ("upgrade_failed", "image pull failed")
    assert counters(host) == (1, 8, 32 * GiB, 3 * TiB)
    assert_counters_exact()


def test_upgrade_rolled_back_returns_the_node_and_the_counters_to_the_from_side(host, images, upgrading):
    small, big, _ = images

    change = report(upgrading, "rolled_back", message="health check failed")

    upgrading.refresh_from_db()
    assert change.command.status == "rolled_back"
    assert (upgrading.state, upgrading.image_id, upgrading.properties) == ("running", small.pk, {"archive": "on"})
    assert allocation(upgrading) == (2, 8 * GiB, 1524 * GiB)
    assert counters(host) == (1, 2, 8 * GiB, 1524 * GiB)
    log = last_log(upgrading)
    assert (log.event, log.old_image_id, log.new_image_id, log.message) == (
        "upgrade_rolled_back",
        big.pk,
        small.pk,
        "health check failed",
    )
    assert (log.old_cpu_cores, log.new_cpu_cores, log.old_disk_bytes, log.new_disk_bytes) == (8, 2, 3 * TiB, 1524 * GiB)
    assert_counters_exact()


def test_a_rollback_needs_no_capacity(images):
    small, big, _ = images
    host = HostFactory(cpu_cores=8, memory_bytes=32 * GiB, disk_bytes=4 * TiB)
    node = place_node(host=host, image=small)
    node_upgrade(node_id=node.pk, image_id=big.pk)
    Host.objects.filter(pk=host.pk).update(cpu_cores=0, memory_bytes=0, disk_bytes=0)  # shrunk since

    report(node, "rolled_back")

    node.refresh_from_db()
    assert (node.state, node.image_id) == ("running", small.pk)
    assert counters(host) == (1, 2, 8 * GiB, 500 * GiB)
    assert_counters_exact()


def test_a_rollback_refused_by_overflow_closes_the_command_and_leaves_the_node_failed_on_the_to_side(images, host):
    small, big, _ = images
    node = place_node(host=host, image=big)
    node_upgrade(node_id=node.pk, image_id=small.pk)
    Host.objects.filter(pk=host.pk).update(node_cpu_cores=BIGINT_MAX)  # putting `big` back would overflow
    before = counters(host)

    change = report(node, "rolled_back", message="agent rolled back")

    node.refresh_from_db()
    assert change.command.status == "rolled_back"
    assert (node.state, node.image_id, allocation(node)) == ("failed", small.pk, (2, 8 * GiB, 500 * GiB))
    assert counters(host) == before
    log = last_log(node)
    assert log.event == "upgrade_failed"
    assert "could not be applied" in log.message and "2**63-1" in log.message and "agent rolled back" in log.message


def test_a_rollback_refused_by_a_counter_below_zero_is_counter_drift(images, host):
    small, big, _ = images
    node = place_node(host=host, image=small)
    node_upgrade(node_id=node.pk, image_id=big.pk)
    Host.objects.filter(pk=host.pk).update(node_cpu_cores=3)  # holds less than the 8 the node has

    report(node, "rolled_back")

    node.refresh_from_db()
    assert (node.state, node.image_id) == ("failed", big.pk)
    assert "below zero" in last_log(node).message and "repair_counters" in last_log(node).message
    host.refresh_from_db()
    assert host.node_cpu_cores == 3


def test_delete_succeeded_changes_nothing_more(host, images):
    node = place_node(host=host, image=images[0])
    node_delete(node_id=node.pk)
    before = fleet_snapshot()
    command = Command.objects.get(node_id=node.pk, kind="node_delete")
    assert command.payload["name"] == node.name

    change = command_result(command_id=command.pk, host_id=host.pk, outcome="succeeded")

    assert change.command.status == "succeeded"
    after = fleet_snapshot()
    assert (after["hosts"], after["nodes"], after["logs"]) == (before["hosts"], before["nodes"], before["logs"])


def test_delete_failed_is_logged_by_node_id_and_name(host, images):
    node = place_node(host=host, image=images[0])
    node_delete(node_id=node.pk)
    command = Command.objects.get(node_id=node.pk, kind="node_delete")

    command_result(command_id=command.pk, host_id=host.pk, outcome="failed", message="vm stuck")

    log = last_log(node)
    assert (log.event, log.node_id, log.node_name, log.host_id, log.message) == (
        "delete_failed",
        node.pk,
        node.name,
        host.pk,
        "vm stuck",
    )
    assert_counters_exact()


@pytest.mark.parametrize("acked", [False, True])
def test_retry_later_returns_to_pending_hidden_until_not_before(host, images, upgrading, acked):
    command = open_command(upgrading)
    if acked:
        command_ack(command_id=command.pk, host_id=host.pk)
    before = timezone.now()

    change = command_result(
        command_id=command.pk, host_id=host.pk, outcome="retry_later", retry_after_seconds=90, message="busy"
    )

    command.refresh_from_db()
    assert (command.status, command.attempts, command.message) == ("pending", 1, "busy")
    assert command.not_before >= before + timezone.timedelta(seconds=90)
    assert change.changed
    upgrading.refresh_from_db()
    assert upgrading.state == "upgrading"
    command_result(command_id=command.pk, host_id=host.pk, outcome="retry_later", retry_after_seconds=1)
    command.refresh_from_db()
    assert command.attempts == 2


# ---------------------------------------------------------------------------------------------
# Idempotency and closed commands


def test_the_same_outcome_twice_changes_nothing(host, images, upgrading):
    report(upgrading, "rolled_back")
    command = Command.objects.get(node_id=upgrading.pk, kind="node_upgrade")
    before = fleet_snapshot()

    change = command_result(command_id=command.pk, host_id=host.pk, outcome="rolled_back", message="again")

    assert change.changed is False
    assert fleet_snapshot() == before
    command.refresh_from_db()
    assert command.message == ""


@pytest.mark.parametrize("outcome", ["succeeded", "failed", "retry_later"])
def test_another_outcome_on_a_closed_command_is_command_closed(host, images, upgrading, outcome):
    report(upgrading, "rolled_back")
    command = Command.objects.get(node_id=upgrading.pk, kind="node_upgrade")
    before = fleet_snapshot()
    extra = {"retry_after_seconds": 5} if outcome == "retry_later" else {}

    with pytest.raises(CommandClosed) as refused:
        command_result(command_id=command.pk, host_id=host.pk, outcome=outcome, **extra)

    assert refused.value.extra == {"command_status": "rolled_back"}
    assert fleet_snapshot() == before


def test_a_result_on_a_superseded_command_is_command_closed(host, images, upgrading):
    first = open_command(upgrading)
    node_upgrade(node_id=upgrading.pk, image_id=images[2].pk)

    with pytest.raises(CommandClosed) as refused:
        command_result(command_id=first.pk, host_id=host.pk, outcome="succeeded")

    assert refused.value.extra == {"command_status": "superseded"}


def test_a_result_may_come_without_an_ack(host, images, upgrading):
    command = open_command(upgrading)
    assert command.status == "pending"

    command_result(command_id=command.pk, host_id=host.pk, outcome="succeeded")

    command.refresh_from_db()
    assert (command.status, command.acked_at) == ("succeeded", None)


@pytest.mark.parametrize(
    ("kind", "outcome", "extra"),
    [
        ("node_create", "rolled_back", {}),
        ("node_create", "exploded", {}),
        ("node_upgrade", "retry_later", {}),
        ("node_upgrade", "retry_later", {"retry_after_seconds": 0}),
        ("node_upgrade", "retry_later", {"retry_after_seconds": 86401}),
        ("node_upgrade", "succeeded", {"retry_after_seconds": 5}),
        ("node_upgrade", "succeeded", {"message": "x" * 2001}),
    ],
)
def test_invalid_results_are_refused_and_change_nothing(host, images, kind, outcome, extra):
    node = place_node(host=host, image=images[0], running=kind != "node_create")
    if kind == "node_upgrade":
        node_upgrade(node_id=node.pk, image_id=images[1].pk)
    command = open_command(node)
    before = fleet_snapshot()

    with pytest.raises(InvalidInput):
        command_result(command_id=command.pk, host_id=host.pk, outcome=outcome, **extra)

    assert fleet_snapshot() == before
    command.refresh_from_db()
    assert command.status == "pending"


def test_another_hosts_command_is_not_found(host, images, upgrading):
    command = open_command(upgrading)
    stranger = HostFactory()

    for call in (
        lambda: command_ack(command_id=command.pk, host_id=stranger.pk),
        lambda: command_result(command_id=command.pk, host_id=stranger.pk, outcome="succeeded"),
    ):
        with pytest.raises(NotFound):
            call()
    for missing in (10**12, "abc", -1, True, BIGINT_MAX + 1):
        with pytest.raises(NotFound):
            command_ack(command_id=missing, host_id=host.pk)


# ---------------------------------------------------------------------------------------------
# Ack


def test_ack_moves_pending_to_acked_once(host, images, upgrading):
    command = open_command(upgrading)

    first = command_ack(command_id=command.pk, host_id=host.pk)
    again = command_ack(command_id=command.pk, host_id=host.pk)

    command.refresh_from_db()
    assert (first.changed, again.changed, command.status) == (True, False, "acked")
    assert command.acked_at is not None and again.command.acked_at == command.acked_at


def test_ack_on_a_closed_command_is_command_closed(host, images, upgrading):
    report(upgrading, "succeeded")
    command = Command.objects.get(node_id=upgrading.pk, kind="node_upgrade")

    with pytest.raises(CommandClosed):
        command_ack(command_id=command.pk, host_id=host.pk)


# ---------------------------------------------------------------------------------------------
# One open command per node: supersede, node_busy, delete


def test_an_acked_upgrade_makes_a_new_upgrade_node_busy(host, images, upgrading):
    command = open_command(upgrading)
    command_ack(command_id=command.pk, host_id=host.pk)
    before = fleet_snapshot()

    with pytest.raises(NodeBusy) as refused:
        node_upgrade(node_id=upgrading.pk, image_id=images[2].pk)

    assert refused.value.extra == {"command_id": command.pk, "command_status": "acked"}
    assert fleet_snapshot() == before
    assert node_upgrade_plan(node_id=upgrading.pk, image_id=images[2].pk).error.code == "node_busy"


def test_an_open_create_makes_an_upgrade_node_busy(host, images):
    node = place_node(host=host, image=images[0], running=False)

    with pytest.raises(NodeBusy) as refused:
        node_upgrade(node_id=node.pk, image_id=images[1].pk)

    assert refused.value.extra["command_status"] == "pending"


def test_node_busy_comes_before_the_other_refusals(host, images, upgrading):
    command_ack(command_id=open_command(upgrading).pk, host_id=host.pk)

    with pytest.raises(NodeBusy):
        node_upgrade(node_id=upgrading.pk, image_id=images[1].pk)  # also already_on_image


def test_a_rollback_after_a_superseded_pending_command_returns_to_what_the_host_ran(host, images, upgrading):
    small, _, third = images
    node_upgrade(node_id=upgrading.pk, image_id=third.pk)  # supersedes small -> big
    newest = open_command(upgrading)
    assert newest.payload["from"]["image_id"] == str(small.pk)
    assert newest.payload["to"]["image_id"] == str(third.pk)

    report(upgrading, "rolled_back")

    upgrading.refresh_from_db()
    assert (upgrading.state, upgrading.image_id, upgrading.properties) == ("running", small.pk, {"archive": "on"})
    assert allocation(upgrading) == (2, 8 * GiB, 1524 * GiB)
    assert counters(host) == (1, 2, 8 * GiB, 1524 * GiB)
    assert list(Command.objects.filter(node_id=upgrading.pk).order_by("id").values_list("status", flat=True)) == [
        "succeeded",
        "superseded",
        "rolled_back",
    ]
    assert_counters_exact()


@pytest.mark.parametrize("state", ["creating", "upgrading-pending", "upgrading-acked", "failed"])
def test_a_node_is_deleted_whatever_its_state_and_its_open_commands_close_as_superseded(host, images, state):
    node = place_node(host=host, image=images[0], running=state != "creating")
    if state.startswith("upgrading"):
        node_upgrade(node_id=node.pk, image_id=images[1].pk)
    if state == "upgrading-acked":
        command_ack(command_id=open_command(node).pk, host_id=host.pk)
    if state == "failed":
        node_upgrade(node_id=node.pk, image_id=images[1].pk)
        report(node, "failed")
    open_before = list(Command.objects.filter(node_id=node.pk, status__in=["pending", "acked"]))

    node_delete(node_id=node.pk)

    assert not Node.objects.filter(pk=node.pk).exists()
    for command in open_before:
        command.refresh_from_db()
        assert command.status == "superseded"
    delete = Command.objects.get(node_id=node.pk, kind="node_delete")
    assert delete.status == "pending"
    assert counters(host) == (0, 0, 0, 0)
    for command in open_before:
        with pytest.raises(CommandClosed):
            command_result(command_id=command.pk, host_id=host.pk, outcome="succeeded")


def test_a_failed_node_can_be_upgraded_back_to_its_previous_image(host, images, upgrading):
    small, _, _ = images
    report(upgrading, "failed")

    node_upgrade(node_id=upgrading.pk, image_id=small.pk)
    report(upgrading, "succeeded")

    upgrading.refresh_from_db()
    assert (upgrading.state, upgrading.image_id) == ("running", small.pk)
    assert_counters_exact()


# ---------------------------------------------------------------------------------------------
# Cancel


def test_cancelling_a_pending_upgrade_returns_the_node_to_its_from_side(host, images, upgrading):
    small, big, _ = images
    command = open_command(upgrading)

    change = command_cancel(command_id=command.pk, source="admin")

    upgrading.refresh_from_db()
    assert change.command.status == "cancelled"
    assert (upgrading.state, upgrading.image_id, allocation(upgrading)) == (
        "running",
        small.pk,
        (2, 8 * GiB, 1524 * GiB),
    )
    assert counters(host) == (1, 2, 8 * GiB, 1524 * GiB)
    log = last_log(upgrading)
    assert (log.event, log.old_image_id, log.new_image_id, log.source) == (
        "command_cancelled",
        big.pk,
        small.pk,
        "admin",
    )
    assert_counters_exact()


def test_cancelling_an_acked_command_leaves_the_node_failed_where_it_is(host, images, upgrading):
    _, big, _ = images
    command = open_command(upgrading)
    command_ack(command_id=command.pk, host_id=host.pk)
    before = counters(host)

    command_cancel(command_id=command.pk)

    upgrading.refresh_from_db()
    assert (upgrading.state, upgrading.image_id) == ("failed", big.pk)
    assert counters(host) == before
    assert last_log(upgrading).event == "command_cancelled"


def test_cancelling_a_pending_create_leaves_the_node_failed(host, images):
    node = place_node(host=host, image=images[0], running=False)

    command_cancel(command_id=open_command(node).pk)

    node.refresh_from_db()
    assert node.state == "failed"
    assert counters(host) == (1, 2, 8 * GiB, 500 * GiB)


def test_cancelling_a_delete_command_logs_it_by_node_id(host, images):
    node = place_node(host=host, image=images[0])
    node_delete(node_id=node.pk)
    command = Command.objects.get(node_id=node.pk, kind="node_delete")

    command_cancel(command_id=command.pk)

    assert (last_log(node).event, last_log(node).node_name) == ("command_cancelled", node.name)


def test_cancelling_a_closed_command_is_invalid_state(host, images, upgrading):
    report(upgrading, "succeeded")
    command = Command.objects.get(node_id=upgrading.pk, kind="node_upgrade")
    before = fleet_snapshot()

    with pytest.raises(InvalidState) as refused:
        command_cancel(command_id=command.pk)

    assert refused.value.extra == {"state": "succeeded"}
    assert fleet_snapshot() == before


def test_an_agent_result_after_a_cancel_is_command_closed(host, images, upgrading):
    command = open_command(upgrading)
    command_cancel(command_id=command.pk)

    with pytest.raises(CommandClosed) as refused:
        command_result(command_id=command.pk, host_id=host.pk, outcome="succeeded")

    assert refused.value.extra == {"command_status": "cancelled"}


# ---------------------------------------------------------------------------------------------
# The state machines, walked whole


@pytest.mark.parametrize("current", list(NodeState))
@pytest.mark.parametrize("target", list(NodeState))
def test_node_state_transitions_follow_the_table(current, target):
    node = Node(name="n", state=current)
    if target in NODE_TRANSITIONS[current]:
        assert node_state_transition(node, target) == target
        assert node.state == target
    else:
        with pytest.raises(InvalidState) as refused:
            node_state_transition(node, target)
        assert (refused.value.extra, node.state) == ({"state": current}, current)


@pytest.mark.parametrize("current", list(CommandStatus))
@pytest.mark.parametrize("target", list(CommandStatus))
def test_command_status_transitions_follow_the_table(current, target):
    command = Command(pk=1, status=current)
    allowed = target in COMMAND_TRANSITIONS[current]
    assert allowed == (current in ("pending", "acked") and (target != "acked" or current == "pending"))
    if allowed:
        assert command_status_transition(command, target) == target
    else:
        with pytest.raises(InvalidState):
            command_status_transition(command, target)
        assert command.status == current


# ---------------------------------------------------------------------------------------------
# Statement counts


def statements(service, **kwargs) -> list[str]:
    """The SQL a service ran, without the savepoints of the test's own transaction."""
    with CaptureQueriesContext(connection) as captured:
        service(**kwargs)
    return [q["sql"] for q in captured.captured_queries if "SAVEPOINT" not in q["sql"]]


def test_a_result_runs_five_statements_with_the_lock_first(host, images, upgrading):
    command = open_command(upgrading)

    sql = statements(command_result, command_id=command.pk, host_id=host.pk, outcome="succeeded")

    # lock node, host and command (one statement); command; node; NodeLog; the rollout row
    # waiting on the command, if any (§10: none here)
    assert len(sql) == 5
    assert sql[0].startswith("SELECT") and sql[0].endswith("FOR NO KEY UPDATE OF n, h, c")
    assert [s.split()[0] for s in sql[1:]] == ["UPDATE", "UPDATE", "INSERT", "UPDATE"]
    assert "nodes_rolloutnode" in sql[4]


def test_a_rollback_runs_seven_statements(host, images, upgrading):
    command = open_command(upgrading)

    sql = statements(command_result, command_id=command.pk, host_id=host.pk, outcome="rolled_back")

    # lock; command; the `from` image exists; counters (deltas); node; NodeLog; rollout row (§10)
    assert len(sql) == 7
    assert any('"node_cpu_cores" = "node_cpu_cores" +' in s for s in sql)


def test_an_ack_runs_two_statements(host, images, upgrading):
    command = open_command(upgrading)

    sql = statements(command_ack, command_id=command.pk, host_id=host.pk)

    assert len(sql) == 2 and sql[0].endswith("FOR NO KEY UPDATE")


def test_an_upgrade_that_supersedes_runs_as_many_statements_as_a_first_upgrade(host, images, upgrading):
    first = statements(node_upgrade, node_id=upgrading.pk, image_id=images[2].pk)
    report(upgrading, "succeeded")
    second = statements(node_upgrade, node_id=upgrading.pk, image_id=images[0].pk)

    # The locked read, then one write (config.db.statements.write_together) whose guard, when there
    # is a pending command, is the superseding UPDATE.
    assert len(first) == len(second) == 2
    assert 'guard AS (UPDATE "nodes_command"' in first[1] and "guard AS" not in second[1]
    assert "LEFT JOIN" in second[0] and "nodes_command" in second[0]  # the open command: in the locked read


def test_results_are_counted_by_kind_and_outcome_once_committed(
    host, images, upgrading, django_capture_on_commit_callbacks
):
    counter = AGENT_RESULTS.labels(kind="node_upgrade", outcome="rolled_back")
    before = counter._value.get()

    with django_capture_on_commit_callbacks(execute=True):
        report(upgrading, "rolled_back")
    with django_capture_on_commit_callbacks(execute=True):
        report_again = Command.objects.get(node_id=upgrading.pk, kind="node_upgrade")
        command_result(command_id=report_again.pk, host_id=host.pk, outcome="rolled_back")  # a repeat: not counted

    assert counter._value.get() == before + 1
