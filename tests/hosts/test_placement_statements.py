"""Statement budgets of §11, counted on the wire: a placed create costs the round trips of a
named one (its choice, claim and re-check are the one statement that replaces the host's
lock); the plan of 1,000 nodes on 10,000 hosts and headroom read host rows only — no
statement touches the nodes table, whatever it holds."""

import pytest

from hosts.models import Host
from hosts.placement import Requirement, headroom, placement_plan
from nodes.changes import node_create
from tests.factories import HostFactory, ImageFactory, place_node
from tests.invariants import assert_counters_exact
from tests.support import round_trips


def kinds(statements):
    return [sql.split()[0] if sql else None for sql in statements]


@pytest.mark.django_db(transaction=True)
def test_a_placed_create_costs_what_a_named_one_does():
    image = ImageFactory(min_cpu_cores=1)
    named_host = HostFactory(name="named", scheduling="manual")
    for index in range(20):
        HostFactory(name=f"auto-{index:02d}")
    with round_trips() as named:
        node_create(name="n1", host_id=named_host.pk, image_id=image.pk)
    with round_trips() as placed:
        node_create(name="n2", image_id=image.pk)
    assert len(placed) == len(named), (named, placed)
    claim = [sql for sql in placed if sql.startswith("SAVEPOINT nf_placement;")]
    assert len(claim) == 1 and "FOR NO KEY UPDATE OF h SKIP LOCKED" in claim[0]
    assert "nodes_node" not in claim[0]  # ranked over host rows alone
    assert_counters_exact()


def _big_fleet(hosts=10_000):
    Host.objects.bulk_create(
        [
            Host(
                name=f"h{index:05d}",
                cpu_cores=64 + index % 7,
                memory_bytes=2**38 + index,
                disk_bytes=2**43,
                max_nodes=None if index % 3 else 40,
                region=("eu", "us", "")[index % 3],
                scheduling="draining" if index % 50 == 0 else "automatic",
            )
            for index in range(hosts)
        ],
        batch_size=2000,
    )


@pytest.mark.django_db
def test_plan_of_1000_nodes_on_10000_hosts_and_headroom_read_no_node(queries):
    _big_fleet()
    image = ImageFactory(min_cpu_cores=2, min_memory_bytes=2**30, min_disk_bytes=2**35)
    place_node(host=Host.objects.get(name="h00001"), image=image)  # nodes exist: they are not read
    requirement = Requirement(requested={"cpu_cores": 2, "memory_bytes": 2**30, "disk_bytes": 2**35})

    with queries() as plan_statements:
        plan = placement_plan(requirement, 1000)
    with queries() as headroom_statements:
        room = headroom(requirement.requested)

    assert plan.placed == 1000
    assert len(plan_statements) == 2, plan_statements  # the exclusion counts, the host rows
    assert len(headroom_statements) == 1, headroom_statements
    for sql in plan_statements + headroom_statements:
        assert "nodes_node" not in sql, sql
    # 9,800 automatic hosts; each takes 32 by cpu (64..70 // 2 = 32..35) but a third stop at 40 slots.
    assert room.nodes > 0 and room.hosts_with_room == 9800
