"""Agent results racing new upgrades, deletes, cancels and acks on one node and one host, with
real commits (threads, each its own connection): no drift, one open command per node, no
deadlock escaping the retry, and a node's state agreeing with its open command."""

import contextlib
import random
import threading
import time
import uuid

import pytest
from django.db import connection, transaction

from config.errors import AlreadyOnImage, CommandClosed, InvalidState, NodeBusy, NotFound
from nodes.agent.lifecycle import command_ack, command_cancel, command_result
from nodes.changes import node_create, node_delete, node_upgrade
from nodes.changes import upgrade as services
from nodes.models import Command, Node
from tests.factories import GiB, HostFactory, ImageFactory, place_node
from tests.invariants import assert_counters_exact
from tests.nodes.changes.test_concurrency import in_threads

#: Refusals a racing call may meet; anything else (Busy included: a deadlock or lock wait that
#: escaped the retry) fails the test.
EXPECTED = (AlreadyOnImage, CommandClosed, InvalidState, NodeBusy, NotFound)


def images_of_three_sizes():
    return [ImageFactory(min_cpu_cores=c, min_memory_bytes=c * GiB, min_disk_bytes=c * 10 * GiB) for c in (1, 4, 9)]


def assert_lifecycle_consistent():
    """Counters equal node sums; at most one open command per node; `creating`/`upgrading`
    exactly when the node has an open command of that kind."""
    assert_counters_exact()
    open_commands = {}
    for command in Command.objects.filter(status__in=["pending", "acked"]):
        assert command.node_id not in open_commands, f"two open commands for {command.node_id}"
        open_commands[command.node_id] = command.kind
    for node in Node.objects.all():
        expected = {"creating": "node_create", "upgrading": "node_upgrade"}.get(node.state)
        assert open_commands.get(node.pk) == expected, (node.name, node.state, open_commands.get(node.pk))


def random_step(rng, node_ids, images, host_id, done):
    """One random call on a random node; `done` counts the calls that went through, by action. A
    deleted node is replaced by a new one (`creating`), so creates join the race too."""
    node_id = rng.choice(node_ids)
    command = Command.objects.filter(node_id=node_id).order_by("-id").first()
    action = rng.choices(["upgrade", "ack", "result", "cancel", "delete"], weights=[5, 3, 5, 1, 0.3])[0]
    try:
        if action == "upgrade":
            node_upgrade(node_id=node_id, image_id=rng.choice(images).pk)
        elif action == "ack" and command:
            command_ack(command_id=command.pk, host_id=host_id)
        elif action == "result" and command:
            outcome = rng.choice(["succeeded", "failed", "rolled_back", "retry_later"])
            if command.kind != "node_upgrade" and outcome == "rolled_back":
                outcome = "succeeded"
            extra = {"retry_after_seconds": 1} if outcome == "retry_later" else {}
            command_result(command_id=command.pk, host_id=host_id, outcome=outcome, **extra)
        elif action == "cancel" and command:
            command_cancel(command_id=command.pk)
        elif action == "delete":
            node_delete(node_id=node_id)
            name = f"replacement-{uuid.uuid4().hex[:12]}"
            node_ids.append(node_create(name=name, host_id=host_id, image_id=images[0].pk).node.pk)
        else:
            return
    except EXPECTED:
        return
    done[action] = done.get(action, 0) + 1


@pytest.mark.django_db(transaction=True)
def test_results_upgrades_deletes_and_cancels_racing_on_one_host_keep_the_books():
    host = HostFactory(cpu_cores=10_000, memory_bytes=10_000 * GiB, disk_bytes=100_000 * GiB)
    images = images_of_three_sizes()
    node_ids = [place_node(host=host, image=images[0]).pk for _ in range(4)]  # few nodes: many collisions

    done = {}

    def work(index):
        rng = random.Random(index)
        for _ in range(40):
            random_step(rng, node_ids, images, host.pk, done)

    assert in_threads(8, work) == []
    assert_lifecycle_consistent()
    assert {"upgrade", "ack", "result"} <= done.keys(), done  # the race really ran the calls


@pytest.mark.django_db(transaction=True)
def test_two_agents_results_racing_on_one_host_keep_the_counters():
    host = HostFactory(cpu_cores=10_000, memory_bytes=10_000 * GiB, disk_bytes=100_000 * GiB)
    images = images_of_three_sizes()
    nodes = [place_node(host=host, image=images[0]) for _ in range(16)]
    for node in nodes:
        node_upgrade(node_id=node.pk, image_id=images[2].pk)
    commands = list(Command.objects.filter(kind="node_upgrade", status="pending").order_by("id"))

    def work(index):
        # Both threads report on every command: one wins, the other meets the same or another outcome.
        outcome = "rolled_back" if index == 0 else "succeeded"
        for command in commands if index == 0 else reversed(commands):
            with contextlib.suppress(CommandClosed):
                command_result(command_id=command.pk, host_id=host.pk, outcome=outcome)

    assert in_threads(2, work) == []
    assert_lifecycle_consistent()
    assert Command.objects.filter(kind="node_upgrade", status__in=["pending", "acked"]).count() == 0


@pytest.mark.django_db(transaction=True)
def test_an_ack_landing_between_the_upgrades_read_and_its_supersede_makes_it_node_busy(monkeypatch):
    host = HostFactory(cpu_cores=10_000, memory_bytes=10_000 * GiB, disk_bytes=100_000 * GiB)
    images = images_of_three_sizes()
    node = place_node(host=host, image=images[0])
    node_upgrade(node_id=node.pk, image_id=images[1].pk)
    pending = Command.objects.get(node_id=node.pk, status="pending")
    original = services.write_together
    acked = []

    def ack_first(**writes):
        # The agent acks from its own connection right before the upgrade's write, whose guard
        # supersedes the pending command: the ack needs no node lock, so it commits first.
        if writes.get("guard") is not None and not acked:
            acked.append(pending.pk)
            thread = threading.Thread(
                target=lambda: (command_ack(command_id=pending.pk, host_id=host.pk), connection.close())
            )
            thread.start()
            thread.join(10)
        return original(**writes)

    monkeypatch.setattr(services, "write_together", ack_first)

    with pytest.raises(NodeBusy) as refused:
        node_upgrade(node_id=node.pk, image_id=images[2].pk)

    assert acked == [pending.pk]
    assert refused.value.extra == {"command_id": pending.pk, "command_status": "acked"}
    pending.refresh_from_db()
    node.refresh_from_db()
    assert (pending.status, node.image_id, node.state) == ("acked", images[1].pk, "upgrading")
    assert_lifecycle_consistent()


@pytest.mark.django_db(transaction=True)
def test_a_result_racing_a_new_upgrade_of_the_same_node_either_closes_or_is_superseded():
    host = HostFactory(cpu_cores=10_000, memory_bytes=10_000 * GiB, disk_bytes=100_000 * GiB)
    images = images_of_three_sizes()
    nodes = [place_node(host=host, image=images[0]) for _ in range(10)]
    for node in nodes:
        node_upgrade(node_id=node.pk, image_id=images[1].pk)
    outcomes = []

    def work(index):
        for node in nodes:
            if index == 0:
                command = Command.objects.get(node_id=node.pk, kind="node_upgrade", status="pending")
                try:
                    command_result(command_id=command.pk, host_id=host.pk, outcome="rolled_back")
                    outcomes.append("rolled_back")
                except CommandClosed:
                    outcomes.append("closed")
            else:
                with contextlib.suppress(*EXPECTED):
                    node_upgrade(node_id=node.pk, image_id=images[2].pk)

    assert in_threads(2, work) == []
    assert len(outcomes) == 10
    assert_lifecycle_consistent()


@pytest.mark.django_db(transaction=True)
def test_an_upgrade_that_waited_while_its_pending_command_was_replaced_supersedes_the_new_one():
    """Upgrade C reads the node's pending command, then waits for the node's lock while another
    transaction upgrades the node twice (superseding that command, then its successor) and ends
    on the image C's read already had. C's read is stale in a way its state check cannot see: its
    conditional supersede finds the command closed, and C reads again under the lock."""
    host = HostFactory(cpu_cores=10_000, memory_bytes=10_000 * GiB, disk_bytes=100_000 * GiB)
    start, middle, other, target = [ImageFactory(min_cpu_cores=c) for c in (1, 2, 3, 4)]
    node = place_node(host=host, image=start)
    node_upgrade(node_id=node.pk, image_id=middle.pk)  # C1 pending: start -> middle
    first = Command.objects.get(node_id=node.pk, status="pending")
    locked, errors = threading.Event(), []

    def other_transaction():
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SELECT 1 FROM nodes_node WHERE id = %s FOR NO KEY UPDATE", [node.pk])
                    locked.set()
                    for _ in range(500):  # until upgrade C waits for the node's lock
                        cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
                        if cursor.fetchone()[0]:
                            break
                        time.sleep(0.01)
                node_upgrade(node_id=node.pk, image_id=other.pk)  # supersedes C1
                node_upgrade(node_id=node.pk, image_id=middle.pk)  # supersedes C2: back on `middle`
        except Exception as error:
            errors.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=other_transaction)
    thread.start()
    assert locked.wait(10)
    node_upgrade(node_id=node.pk, image_id=target.pk)  # upgrade C
    thread.join(10)

    assert errors == []
    commands = list(Command.objects.filter(node_id=node.pk, kind="node_upgrade").order_by("id"))
    assert [c.status for c in commands] == ["superseded", "superseded", "superseded", "pending"]
    assert commands[-1].payload["from"] == first.payload["from"]  # what the host still runs: `start`
    assert commands[-1].payload["to"]["image_id"] == str(target.pk)
    assert_lifecycle_consistent()
