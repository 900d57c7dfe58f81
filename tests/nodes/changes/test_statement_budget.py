"""The upgrade's statement budget (docs/performance.md): on PostgreSQL, BEGIN, the locked read,
ONE write statement and COMMIT — counted on the wire, BEGIN and COMMIT included."""

import pytest

from nodes.changes import node_upgrade
from nodes.models import Command, Node
from tests.factories import HostFactory, ImageFactory, ImagePropertyFactory, place_node
from tests.invariants import assert_counters_exact
from tests.support import round_trips

pytestmark = pytest.mark.django_db(transaction=True)  # real BEGIN/COMMIT, not savepoints


@pytest.fixture
def fleet():
    host = HostFactory()
    old, new = ImageFactory(), ImageFactory(min_cpu_cores=5)
    ImagePropertyFactory(image=new, key="rpc", add_cpu_cores=1)
    return old, new, place_node(host=host, image=old)


def kinds(statements):
    return [sql.split()[0] if sql else None for sql in statements]


def test_an_upgrade_is_begin_one_locked_read_one_write_commit(fleet):
    _old, new, node = fleet
    with round_trips() as statements:
        node_upgrade(node_id=node.pk, image_id=new.pk)

    assert kinds(statements) == ["BEGIN", "SELECT", "WITH", "COMMIT"], statements
    assert statements[1].endswith("FOR NO KEY UPDATE OF n, h FOR KEY SHARE OF i")
    write = statements[2]
    for part in (
        'UPDATE "hosts_host"',
        'UPDATE "nodes_node"',
        'INSERT INTO "nodes_nodelog"',
        'INSERT INTO "nodes_command"',
    ):
        assert part in write
    assert Node.objects.get(pk=node.pk).image_id == new.pk
    assert_counters_exact()


def test_superseding_a_pending_upgrade_is_part_of_the_same_write(fleet):
    old, new, node = fleet
    node_upgrade(node_id=node.pk, image_id=new.pk)  # leaves a pending node_upgrade command
    pending = Command.objects.get(node_id=node.pk, status="pending")

    with round_trips() as statements:
        node_upgrade(node_id=node.pk, image_id=old.pk)

    assert kinds(statements) == ["BEGIN", "SELECT", "WITH", "COMMIT"], statements
    pending.refresh_from_db()
    assert pending.status == "superseded"
    newest = Command.objects.get(node_id=node.pk, status="pending")
    assert newest.payload["from"] == pending.payload["from"]  # the host never started the superseded one
    assert_counters_exact()


def test_a_refused_upgrade_writes_nothing_after_its_read(fleet):
    old, _new, node = fleet
    with round_trips() as statements, pytest.raises(Exception, match="already runs"):
        node_upgrade(node_id=node.pk, image_id=old.pk)
    assert kinds(statements) == ["BEGIN", "SELECT", "ROLLBACK"], statements


def test_an_upgrade_refused_by_an_acked_command_reads_it_once_more(fleet):
    """The rare path: the command read `acked`, which a retry_later the read waited for may have
    returned to `pending` without writing the node's row (issue 19): one more read, nothing else."""
    from nodes.agent.lifecycle import command_ack

    old, new, node = fleet
    node_upgrade(node_id=node.pk, image_id=new.pk)
    acked = Command.objects.get(node_id=node.pk, status="pending")
    command_ack(command_id=acked.pk, host_id=node.host_id)
    with round_trips() as statements, pytest.raises(Exception, match="cannot change now"):
        node_upgrade(node_id=node.pk, image_id=old.pk)
    assert kinds(statements) == ["BEGIN", "SELECT", "SELECT", "ROLLBACK"], statements
