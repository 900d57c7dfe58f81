"""A failure at any write step leaves no trace, and a retry after it succeeds (real commits)."""

import threading

import pytest
from django.db import DatabaseError, connection, connections

from config.errors import Busy
from hosts.models import Host
from nodes.models import Command, Node, NodeLog
from nodes.services import node_create, node_delete, node_upgrade
from tests.factories import HostFactory, ImageFactory, ImagePropertyFactory, place_node
from tests.invariants import assert_counters_exact

pytestmark = pytest.mark.django_db(transaction=True)


def snapshot():
    return (
        list(Host.objects.order_by("pk").values()),
        list(Node.objects.order_by("pk").values()),
        NodeLog.objects.count(),
        Command.objects.count(),
    )


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
    before = snapshot()

    with connection.execute_wrapper(failing_at(statement)), pytest.raises(DatabaseError, match="injected"):
        OPERATIONS[operation](*fleet)

    assert snapshot() == before
    OPERATIONS[operation](*fleet)  # the cause is gone: the retry succeeds
    assert snapshot() != before
    assert_counters_exact()


def test_a_lock_held_past_the_lock_timeout_answers_busy_and_writes_nothing(fleet):
    host, _old, new, node = fleet
    locked, release = threading.Event(), threading.Event()

    def hold_host_lock():
        other = connections.create_connection("default")
        try:
            with other.cursor() as cursor:
                cursor.execute("BEGIN")
                cursor.execute("SELECT 1 FROM hosts_host WHERE id = %s FOR UPDATE", [host.pk])
                locked.set()
                release.wait(10)
                cursor.execute("ROLLBACK")
        finally:
            other.close()

    holder = threading.Thread(target=hold_host_lock)
    holder.start()
    assert locked.wait(5)
    before = snapshot()
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '200ms'")
    try:
        with pytest.raises(Busy) as caught:
            node_upgrade(node_id=node.pk, image_id=new.pk)
    finally:
        release.set()
        holder.join()
    assert (caught.value.status, caught.value.retry_after) == (503, 1)
    assert snapshot() == before

    node_upgrade(node_id=node.pk, image_id=new.pk)
    assert_counters_exact()
