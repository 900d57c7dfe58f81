"""node_allocations_repair (repair_counters --fix-nodes): allocations back to their config, the
host's counters moved with them in the same transaction, NodeLog `allocation_repaired`."""

import pytest

from hosts.models import CounterRepair, Host
from nodes.audit import node_allocation_findings
from nodes.models import Node, NodeLog
from nodes.repair import node_allocations_repair
from tests.factories import GiB, HostFactory, TiB, UserFactory, place_node
from tests.hosts.drift import DEFAULTS, drifted_nodes, ethereum_image, fleet, node, set_config, set_counter, sql
from tests.invariants import assert_counters_exact, counter_drift


@pytest.mark.django_db
def test_every_drifted_node_is_repaired_exactly_and_counters_follow():
    expected = drifted_nodes()
    drifted = {name for name, *_ in expected}
    operator = UserFactory()

    report = node_allocations_repair(actor=operator)

    assert {change.node_name for change in report.changes} == drifted
    assert report.refused == []
    assert list(node_allocation_findings()) == []
    assert_counters_exact()
    logs = {log.node_name: log for log in NodeLog.objects.filter(event="allocation_repaired")}
    assert set(logs) == drifted
    h03a = logs["h03-a"]
    assert (h03a.old_cpu_cores, h03a.new_cpu_cores, h03a.old_disk_bytes, h03a.new_disk_bytes) == (
        2,
        4,
        500 * GiB,
        500 * GiB + TiB,
    )
    assert (h03a.actor, h03a.source, h03a.old_image_id, h03a.new_image_id) == (
        operator,
        "cli",
        node("h03-a").image_id,
        node("h03-a").image_id,
    )
    assert h03a.warnings == [
        f"config key {key!r} held a non-string value; the new image's default was used" for key in ("extra", "rpc")
    ]
    assert node("h03-a").properties == {"rpc": "off", "sync": "full"}
    assert node("h02-a").properties == DEFAULTS and node("h01-b").properties == DEFAULTS
    assert node("h04-a").properties == {"rpc": "off", "sync": "snap"}  # clean, untouched


@pytest.mark.django_db
def test_the_host_moves_by_the_nodes_delta_and_the_move_is_recorded():
    host, _other = fleet(2)
    sql("UPDATE nodes_node SET properties = %s WHERE name = 'h00-a'", '{"rpc": "on"}')  # config changed, not allocation

    report = node_allocations_repair()

    host.refresh_from_db()
    assert [(c.old["cpu_cores"], c.new["cpu_cores"]) for c in report.changes] == [(2, 3)]
    assert (host.node_cpu_cores, host.node_memory_bytes) == (6, 20 * GiB)
    assert [(c.old["node_cpu_cores"], c.new["node_cpu_cores"]) for c in report.counter_changes] == [(5, 6)]
    assert CounterRepair.objects.get().host == host


@pytest.mark.django_db
def test_a_node_fix_on_a_host_whose_counters_are_already_too_low_ends_exact_never_negative():
    host = fleet(1)[0]
    sql("UPDATE hosts_host SET node_cpu_cores = 0, node_memory_bytes = 0 WHERE id = %s", host.pk)
    sql("UPDATE nodes_node SET cpu_cores = 50 WHERE name = 'h00-b'")  # must come down by 47

    node_allocations_repair()

    assert_counters_exact()
    assert Host.objects.get(pk=host.pk).node_cpu_cores == 5


@pytest.mark.django_db
def test_a_second_node_repair_changes_nothing_and_a_dry_run_writes_nothing():
    drifted_nodes()
    before = list(Node.objects.order_by("name").values_list("name", "properties", "cpu_cores", "memory_bytes"))
    drift_before = counter_drift()

    planned = node_allocations_repair(dry_run=True)

    assert planned.dry_run and len(planned.changes) == 7
    assert list(Node.objects.order_by("name").values_list("name", "properties", "cpu_cores", "memory_bytes")) == before
    assert counter_drift() == drift_before
    assert NodeLog.objects.filter(event="allocation_repaired").count() == 0

    applied = node_allocations_repair()
    assert [change.new for change in applied.changes] == [change.new for change in planned.changes]
    assert node_allocations_repair().changes == []
    assert NodeLog.objects.filter(event="allocation_repaired").count() == 7


@pytest.mark.django_db
def test_a_node_on_an_image_with_invalid_requirements_is_refused_and_left_as_it_is():
    image = ethereum_image()
    broken = ethereum_image("9.9")
    host = HostFactory()
    good = place_node(host=host, image=image)
    bad = place_node(host=host, image=broken)
    sql("UPDATE nodes_image SET min_cpu_cores = -4 WHERE id = %s", broken.pk)
    sql("UPDATE nodes_node SET cpu_cores = 7 WHERE id = %s", good.pk)

    report = node_allocations_repair()

    assert [change.node_name for change in report.changes] == [good.name]
    assert len(report.refused) == 1 and report.refused[0][0] == bad.name
    assert "invalid requirement: min_cpu_cores = -4" in report.refused[0][1]
    assert Node.objects.get(pk=bad.pk).cpu_cores == 2


@pytest.mark.django_db
def test_each_node_is_locked_with_its_host_before_anything_is_written(queries):
    fleet(2)
    set_config(node("h00-b"), None)
    set_config(node("h01-b"), None)
    set_counter(Host.objects.get(name="h01"), "node_count", 1)

    with queries() as statements:
        node_allocations_repair()

    node_locks = [i for i, s in enumerate(statements) if 'FOR NO KEY UPDATE OF "nodes_node", "hosts_host"' in s]
    node_writes = [i for i, s in enumerate(statements) if s.startswith('UPDATE "nodes_node"')]
    host_writes = [i for i, s in enumerate(statements) if s.startswith('UPDATE "hosts_host"')]
    assert len(node_locks) == len(node_writes) == len(host_writes) == 2
    assert all(lock < write for lock, write in zip(node_locks, node_writes, strict=True))
    assert all(lock < write for lock, write in zip(node_locks, host_writes, strict=True))
    assert_counters_exact()
