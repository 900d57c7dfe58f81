"""A failure at any write step leaves no trace, and a retry after it succeeds (real commits)."""

from contextlib import contextmanager

import pytest
from django.db import DatabaseError, connection

from config.errors import Busy
from nodes.changes import node_create, node_delete, node_upgrade
from nodes.models import Command, Node
from tests.factories import HostFactory, ImageFactory, ImagePropertyFactory, place_node
from tests.invariants import assert_counters_exact
from tests.support import fleet_snapshot, host_lock_held

pytestmark = pytest.mark.django_db(transaction=True)


def failing_at(prefix):
    """An execute wrapper that makes the database refuse the first statement starting with `prefix`
    (for writers whose writes are one statement each: tests/nodes/agent/test_lifecycle_failures.py)."""

    def wrapper(execute, sql, params, many, context):
        if sql.startswith(prefix):
            raise DatabaseError(f"injected failure at {prefix}")
        return execute(sql, params, many, context)

    return wrapper


@contextmanager
def refused_at(operation: str, table: str):
    """Makes the database refuse every `operation` (INSERT, UPDATE or DELETE) of a row of `table`:
    a trigger raises, whichever statement carries the write (on PostgreSQL the upgrade's writes
    are parts of one statement, config.db.statements.write_together)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE OR REPLACE FUNCTION test_injected_failure() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'injected failure at % of %', TG_OP, TG_TABLE_NAME; END $$"
        )
        cursor.execute(
            f'CREATE TRIGGER test_injected_failure BEFORE {operation} ON "{table}" '
            "FOR EACH ROW EXECUTE FUNCTION test_injected_failure()"
        )
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP TRIGGER IF EXISTS test_injected_failure ON "{table}"')


@pytest.fixture
def fleet():
    host = HostFactory()
    old, new = ImageFactory(), ImageFactory(min_cpu_cores=5)
    ImagePropertyFactory(image=new, key="rpc", add_cpu_cores=1)
    return host, old, new, place_node(host=host, image=old)


def upgrade_over_a_pending_upgrade(host, old, new, node):
    """The node's pending upgrade command (left by an earlier upgrade) is superseded."""
    if not Command.objects.filter(node_id=node.pk, kind="node_upgrade", status="pending").exists():
        node_upgrade(node_id=node.pk, image_id=new.pk)
    node_upgrade(node_id=node.pk, image_id=old.pk if Node.objects.get(pk=node.pk).image_id == new.pk else new.pk)


OPERATIONS = {
    "upgrade": lambda host, old, new, node: node_upgrade(node_id=node.pk, image_id=new.pk),
    "upgrade over a pending upgrade": upgrade_over_a_pending_upgrade,
    "create": lambda host, old, new, node: node_create(name="fresh", host_id=host.pk, image_id=new.pk),
    "delete": lambda host, old, new, node: node_delete(node_id=node.pk),
}
LOG_AND_COMMAND = [("INSERT", "nodes_nodelog"), ("INSERT", "nodes_command")]
UPGRADE = [("UPDATE", "hosts_host"), ("UPDATE", "nodes_node"), *LOG_AND_COMMAND]
WRITES = {
    "upgrade": UPGRADE,
    "upgrade over a pending upgrade": [("UPDATE", "nodes_command"), *UPGRADE],
    "create": [("UPDATE", "hosts_host"), ("INSERT", "nodes_node"), *LOG_AND_COMMAND],
    "delete": [("UPDATE", "hosts_host"), ("DELETE", "nodes_node"), *LOG_AND_COMMAND],
}


@pytest.mark.parametrize(
    ("operation", "step"),
    [(op, step) for op, steps in WRITES.items() for step in steps],
    ids=[f"{op}-{' '.join(step)}" for op, steps in WRITES.items() for step in steps],
)
def test_a_failure_at_each_write_step_rolls_everything_back(fleet, operation, step):
    if operation == "upgrade over a pending upgrade":
        node_upgrade(node_id=fleet[3].pk, image_id=fleet[2].pk)  # leaves a pending upgrade command
    before = fleet_snapshot()

    with refused_at(*step), pytest.raises(DatabaseError, match="injected failure at"):
        OPERATIONS[operation](*fleet)

    assert fleet_snapshot() == before
    OPERATIONS[operation](*fleet)  # the cause is gone: the retry succeeds
    assert fleet_snapshot() != before
    assert_counters_exact()


def test_a_lock_held_past_the_lock_timeout_answers_busy_and_writes_nothing(fleet):
    host, _old, new, node = fleet
    with host_lock_held(host.pk):
        before = fleet_snapshot()
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '200ms'")
        with pytest.raises(Busy) as caught:
            node_upgrade(node_id=node.pk, image_id=new.pk)
    assert (caught.value.status, caught.value.retry_after) == (503, 1)
    assert fleet_snapshot() == before

    node_upgrade(node_id=node.pk, image_id=new.pk)
    assert_counters_exact()
