"""A rollout's plan against hand-computed cases: selection and order, batches, capacity counted
across the earlier nodes of each host, skipped reasons, totals; nothing written by a dry run."""

import pytest

from config.errors import InvalidInput, NotFound
from nodes.models import Node
from nodes.resources import Resources
from nodes.rollouts.models import RolloutNode
from nodes.rollouts.plan import rollout_plan, selection_check
from nodes.rollouts.services import rollout_create
from tests.factories import GiB, HostFactory, ImageFactory, TiB
from tests.nodes.rollouts.support import running_node
from tests.support import fleet_snapshot

pytestmark = pytest.mark.django_db


@pytest.fixture
def fleet():
    """Two hosts of 8 cores. v1 needs 2 cores, v2 (the target) 3: each upgrade adds a core.
    host-a holds a1..a3 (6 of 8 cores: two more fit, the third does not); host-b holds b1 (on
    v1) and b2 (already on v2); another protocol's node sits on host-b too."""
    v1 = ImageFactory(protocol="eth", version="1.0", min_cpu_cores=2, min_memory_bytes=GiB, min_disk_bytes=GiB)
    v2 = ImageFactory(protocol="eth", version="2.0", min_cpu_cores=3, min_memory_bytes=GiB, min_disk_bytes=GiB)
    other = ImageFactory(protocol="sol", version="1.0", min_cpu_cores=1, min_memory_bytes=GiB, min_disk_bytes=GiB)
    a = HostFactory(name="host-a", cpu_cores=8, memory_bytes=64 * GiB, disk_bytes=TiB)
    b = HostFactory(name="host-b", cpu_cores=8, memory_bytes=64 * GiB, disk_bytes=TiB)
    for name in ("a3", "a1", "a2"):  # created out of order: the plan orders by name
        running_node(host=a, image=v1, name=name)
    running_node(host=b, image=v1, name="b1")
    running_node(host=b, image=v2, name="b2")
    running_node(host=b, image=other, name="s1")
    return {"v1": v1, "v2": v2, "other": other, "a": a, "b": b}


def by_name(plan):
    return {node.node_name: node for node in plan.nodes}


def test_plan_orders_by_host_then_node_and_counts_earlier_nodes_of_the_host(fleet):
    plan = rollout_plan(selection_check(image_id=fleet["v2"].pk, canary=1, batch_size=2))

    assert [n.node_name for n in plan.nodes] == ["a1", "a2", "a3", "b1"]
    nodes = by_name(plan)
    assert (nodes["a1"].status, nodes["a1"].batch) == ("pending", 1)
    assert (nodes["a2"].status, nodes["a2"].batch) == ("pending", 2)
    assert nodes["a3"].status == "skipped" and nodes["a3"].batch == 0
    assert "not enough CPU" in nodes["a3"].reason and "host-a" in nodes["a3"].reason
    assert nodes["a3"].fits["cpu_cores"] is False
    assert (nodes["b1"].status, nodes["b1"].batch) == ("pending", 2)
    assert nodes["a1"].old == Resources(2, GiB, GiB) and nodes["a1"].new == Resources(3, GiB, GiB)
    assert plan.batches == 2
    assert plan.counts == {**plan.counts, "pending": 3, "skipped": 1}


def test_plan_totals_per_host_and_overall(fleet):
    plan = rollout_plan(selection_check(image_id=fleet["v2"].pk))

    hosts = {h.host_name: h for h in plan.hosts}
    assert (hosts["host-a"].selected, hosts["host-a"].skipped) == (2, 1)
    assert hosts["host-a"].delta == Resources(2, 0, 0)
    assert hosts["host-a"].after.cpu_cores == 8 and hosts["host-a"].free_after.cpu_cores == 0
    assert hosts["host-b"].after.cpu_cores == 2 + 3 + 1 + 1  # b1 2->3, b2 3, s1 1
    assert plan.new - plan.old == Resources(3, 0, 0)


def test_canary_zero_means_no_canary_batch(fleet):
    plan = rollout_plan(selection_check(image_id=fleet["v2"].pk, canary=0, batch_size=2))

    assert {n.node_name: n.batch for n in plan.nodes if n.batch} == {"a1": 1, "a2": 1, "b1": 2}


def test_narrowing_by_host_from_version_and_listed_nodes(fleet):
    only_b = rollout_plan(selection_check(image_id=fleet["v2"].pk, host_ids=[fleet["b"].pk]))
    assert [n.node_name for n in only_b.nodes] == ["b1"]

    none = rollout_plan(selection_check(image_id=fleet["v2"].pk, from_versions=["0.9"]))
    assert none.nodes == [] and none.batches == 0

    listed = Node.objects.filter(name__in=["b2", "s1", "a1"]).values_list("pk", flat=True)
    plan = by_name(rollout_plan(selection_check(image_id=fleet["v2"].pk, node_ids=list(listed))))
    assert plan["a1"].status == "pending"
    assert plan["b2"].status == "skipped" and "already runs" in plan["b2"].reason
    assert plan["s1"].status == "skipped" and "another protocol" in plan["s1"].reason


def test_node_in_another_active_rollout_is_skipped(fleet):
    first = rollout_create(selection=selection_check(image_id=fleet["v2"].pk, host_ids=[fleet["b"].pk]))

    plan = by_name(rollout_plan(selection_check(image_id=fleet["v2"].pk)))

    assert plan["b1"].status == "skipped" and plan["b1"].reason == f"in rollout {first.pk}"
    assert plan["a1"].status == "pending"


def test_a_skipped_node_takes_no_capacity_from_later_ones(fleet):
    """host-c (10 cores) holds c1..c3 on v1 (2 cores each) and c4 on v0 (3 cores): 9 used. c1
    fits (+1), then c2 and c3 do not; c4 keeps 3 cores on v2 and fits whatever is left."""
    v0 = ImageFactory(protocol="eth", version="0.9", min_cpu_cores=3, min_memory_bytes=GiB, min_disk_bytes=GiB)
    c = HostFactory(name="host-c", cpu_cores=10, memory_bytes=64 * GiB, disk_bytes=TiB)
    for name in ("c1", "c2", "c3"):
        running_node(host=c, image=fleet["v1"], name=name)
    running_node(host=c, image=v0, name="c4")

    plan = rollout_plan(selection_check(image_id=fleet["v2"].pk, host_ids=[c.pk]))

    assert [(n.node_name, n.status) for n in plan.nodes] == [
        ("c1", "pending"),
        ("c2", "skipped"),
        ("c3", "skipped"),
        ("c4", "pending"),
    ]
    assert plan.hosts[0].after.cpu_cores == 10


def test_dry_run_writes_nothing(fleet):
    before = fleet_snapshot()

    rollout_plan(selection_check(image_id=fleet["v2"].pk))

    assert fleet_snapshot() == before
    assert not RolloutNode.objects.exists()


def test_selection_refuses_unknown_ids_and_bad_numbers(fleet):
    with pytest.raises(NotFound):
        selection_check(image_id="00000000-0000-0000-0000-000000000000")
    with pytest.raises(NotFound):
        selection_check(image_id=fleet["v2"].pk, host_ids=["00000000-0000-0000-0000-000000000000"])
    with pytest.raises(InvalidInput) as error:
        selection_check(image_id=fleet["v2"].pk, batch_size=0, canary=-1)
    assert set(error.value.extra["errors"]) == {"batch_size", "canary"}
