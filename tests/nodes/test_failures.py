"""A failure at any write step leaves no trace, and a retry after it succeeds (real commits)."""

import pytest
from django.db import DatabaseError, connection

from config.errors import Busy
from nodes.services import node_create, node_delete, node_upgrade
from tests.factories import HostFactory, ImageFactory, ImagePropertyFactory, place_node
from tests.invariants import assert_counters_exact
from tests.support import fleet_snapshot, host_lock_held

pytestmark = pytest.mark.django_db(transaction=True)


def failing_at(prefix):
    """An execute wrapper that makes the database refuse the first statement starting with `prefix`."""

    def wrapper(execute, sql, params, many, context):
        if sql.startswith(prefix):
            raise DatabaseError(f"injected failure at {prefix}")
        return execute(sql, params, many, context)

    return wrapper


@pytest.fixture
def fleet():
    host = HostFactory()
    old, new = ImageFactory(), ImageFactory(min_cpu_cores=5)
    ImagePropertyFactory(image=new, key="rpc", add_cpu_cores=1)
    return host, old, new, place_node(host=host, image=old)


OPERATIONS = {
    "upgrade": lambda host, old, new, node: node_upgrade(node_id=node.pk, image_id=new.pk),
    "create": lambda host, old, new, node: node_create(name="fresh", host_id=host.pk, image_id=new.pk),
    "delete": lambda host, old, new, node: node_delete(node_id=node.pk),
}
LOG_AND_COMMAND = ['INSERT INTO "nodes_nodelog"', 'INSERT INTO "nodes_command"']
WRITES = {
    "upgrade": ['UPDATE "hosts_host"', 'UPDATE "nodes_node"', *LOG_AND_COMMAND],
    "create": ['UPDATE "hosts_host"', 'INSERT INTO "nodes_node"', *LOG_AND_COMMAND],
    "delete": ['UPDATE "hosts_host"', 'DELETE FROM "nodes_node"', *LOG_AND_COMMAND],
}


@pytest.mark.parametrize(
    ("operation", "statement"), [(op, statement) for op, statements in WRITES.items() for statement in statements]
)
def test_a_failure_at_each_write_step_rolls_everything_back(fleet, operation, statement):
    before = fleet_snapshot()

    with connection.execute_wrapper(failing_at(statement)), pytest.raises(DatabaseError, match="injected"):
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
