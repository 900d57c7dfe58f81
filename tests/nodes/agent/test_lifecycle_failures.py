"""An agent's outcome or a cancel commits whole or not at all: a failure at any of its writes
leaves the node, the counters, the command and the history as they were (real commits), and the
same call afterwards applies."""

import pytest
from django.db import DatabaseError, connection

from nodes.agent.lifecycle import command_cancel, command_result
from nodes.changes import node_upgrade
from nodes.models import Command
from tests.factories import HostFactory, ImageFactory, place_node
from tests.invariants import assert_counters_exact
from tests.nodes.test_failures import failing_at
from tests.support import fleet_snapshot

pytestmark = pytest.mark.django_db(transaction=True)


def snapshot() -> dict:
    return {**fleet_snapshot(), "command_rows": list(Command.objects.order_by("pk").values())}


@pytest.fixture
def pending_upgrade():
    host = HostFactory()
    old, new = ImageFactory(), ImageFactory(min_cpu_cores=5)
    node = place_node(host=host, image=old)
    node_upgrade(node_id=node.pk, image_id=new.pk)
    return Command.objects.get(node_id=node.pk, status="pending")


CALLS = {
    "rollback": lambda c: command_result(command_id=c.pk, host_id=c.host_id, outcome="rolled_back"),
    "failed": lambda c: command_result(command_id=c.pk, host_id=c.host_id, outcome="failed"),
    "cancel": lambda c: command_cancel(command_id=c.pk),
}
WRITES = {
    "rollback": ['UPDATE "nodes_command"', 'UPDATE "hosts_host"', 'UPDATE "nodes_node"', 'INSERT INTO "nodes_nodelog"'],
    "failed": ['UPDATE "nodes_command"', 'UPDATE "nodes_node"', 'INSERT INTO "nodes_nodelog"'],
    "cancel": ['UPDATE "nodes_command"', 'UPDATE "hosts_host"', 'UPDATE "nodes_node"', 'INSERT INTO "nodes_nodelog"'],
}


@pytest.mark.parametrize(("call", "statement"), [(call, s) for call, statements in WRITES.items() for s in statements])
def test_a_failure_at_each_write_of_an_outcome_rolls_everything_back(pending_upgrade, call, statement):
    before = snapshot()

    with connection.execute_wrapper(failing_at(statement)), pytest.raises(DatabaseError, match="injected"):
        CALLS[call](pending_upgrade)

    assert snapshot() == before
    CALLS[call](pending_upgrade)  # the cause is gone: the same report applies
    assert snapshot() != before
    assert_counters_exact()
