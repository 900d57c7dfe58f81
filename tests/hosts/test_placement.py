"""§11 placement through node_create on small hand-computed fleets: eligibility, the score
(binpack, spread, spread_protocol), ties by name, the refusal and its counts, draining and
manual hosts, and every capacity rule of §2 again with reserves, ratios and slots."""

from decimal import Decimal

import pytest

from config.errors import HostUnavailable, InsufficientCapacity, InvalidInput, NoHostAvailable
from hosts.models import Host
from hosts.placement import Requirement, exclusions, no_host_detail, place
from nodes.changes import node_create, node_delete, node_upgrade
from nodes.models import Node
from tests.factories import HostFactory, ImageFactory, UserFactory, place_node
from tests.invariants import assert_counters_exact

pytestmark = pytest.mark.django_db


def image(cpu=1, memory=1, disk=1, protocol="ethereum"):
    return ImageFactory(min_cpu_cores=cpu, min_memory_bytes=memory, min_disk_bytes=disk, protocol=protocol)


def host(name, cpu=10, memory=10, disk=10, **values):
    return HostFactory(name=name, cpu_cores=cpu, memory_bytes=memory, disk_bytes=disk, **values)


def placed(img, placement=None, name=None, **kwargs):
    global _n
    _n += 1
    return node_create(name=name or f"p-{_n}", image_id=img.pk, placement=placement, **kwargs)


_n = 0


class TestChoice:
    def test_binpack_takes_the_fullest_and_spread_the_emptiest(self):
        img = image()
        a, b, c = host("a"), host("b"), host("c")
        place_node(host=b, image=img)
        place_node(host=b, image=img)
        place_node(host=c, image=img)
        # After placing: a 1/10, b 3/10, c 2/10 on each resource.
        assert placed(img).host.name == "b"
        assert placed(img, {"strategy": "spread"}).host.name == "a"
        assert_counters_exact()
        assert Host.objects.get(pk=a.pk).node_count == 1

    def test_the_score_is_the_mean_over_resources_with_allocatable(self):
        img = image(cpu=1, memory=1, disk=0)
        # x: cpu 1/2, memory 1/100, disk 0/1 -> mean 0.17; y: cpu 1/10, memory 1/10 (disk
        # allocatable 0 is left out: the reserve takes it all) -> 0.1; so binpack takes x.
        host("x", cpu=2, memory=100, disk=1)
        host("y", cpu=10, memory=10, disk=5, reserved_disk_bytes=5)
        assert placed(img).host.name == "x"
        assert placed(img, {"strategy": "spread"}).host.name == "y"

    def test_exact_score_separates_what_floats_would_tie(self):
        big = 2**62
        img = image(cpu=0, memory=1, disk=0)
        # (1 + used) / 2**62 differ by 2**-62 between the two: invisible to a float mean.
        host("m", cpu=0, memory=big, disk=0)
        n = host("n", cpu=0, memory=big, disk=0)
        place_node(host=n, image=img)
        assert placed(img).host.name == "n"
        assert placed(img, {"strategy": "spread"}).host.name == "m"

    def test_ties_go_to_the_name(self):
        img = image()
        for name in ("h-c", "h-a", "h-b"):
            host(name)
        assert placed(img).host.name == "h-a"
        assert placed(img, {"strategy": "spread"}).host.name == "h-b"  # h-a now fuller

    def test_ratio_and_reserve_move_the_score(self):
        img = image(cpu=2, memory=0, disk=0)
        host("plain", cpu=8)  # (2+0)/8 = 0.25
        host("overcommitted", cpu=8, cpu_allocation_ratio=Decimal("2"))  # 2/16
        host("reserved", cpu=8, reserved_cpu_cores=4)  # 2/4
        assert placed(img).host.name == "reserved"
        assert placed(img, {"strategy": "spread"}).host.name == "overcommitted"

    def test_spread_protocol_counts_same_protocol_nodes_first(self):
        eth, sol = image(protocol="ethereum"), image(protocol="solana")
        a, b = host("a"), host("b")
        place_node(host=a, image=sol)
        place_node(host=a, image=sol)
        place_node(host=b, image=eth)
        # binpack prefers a (fuller); spread_protocol for ethereum prefers a too (0 ethereum
        # nodes) and for solana b (0 solana nodes) although b is emptier.
        assert placed(eth, {"spread_protocol": True}).host.name == "a"
        assert placed(sol, {"spread_protocol": True}).host.name == "b"

    def test_region(self):
        img = image()
        host("eu", region="eu-1")
        host("us", region="us-1")
        host("none")
        assert placed(img, {"region": "us-1"}).host.name == "us"
        assert placed(img, {"region": ""}).host.name == "none"
        with pytest.raises(NoHostAvailable) as refused:
            placed(img, {"region": "ap-1"})
        assert refused.value.extra["excluded"]["region"] == 3

    def test_only_automatic_hosts_are_chosen(self):
        img = image()
        host("a-manual", scheduling="manual")
        host("b-draining", scheduling="draining")
        c = host("c-auto", cpu=100, memory=100, disk=100)  # the emptiest, yet the only one
        assert placed(img).host == c

    def test_slots_and_fit_under_allocatable(self):
        img = image(cpu=3)
        host("full-slots", cpu=100, max_nodes=0)
        host("small", cpu=10, cpu_allocation_ratio=Decimal("0.25"))  # allocatable 2
        ok = host("ok", cpu=3, memory=10, disk=10, max_nodes=1)  # exactly enough: fits
        assert placed(img).host == ok
        with pytest.raises(NoHostAvailable) as refused:
            placed(img)
        error = refused.value
        assert error.extra == {
            "hosts_considered": 3,
            "excluded": {
                "scheduling": 0,
                "region": 0,
                "cpu_cores": 2,
                "memory_bytes": 0,
                "disk_bytes": 0,
                "node_count": 2,
            },
        }
        assert error.detail == (
            "No host can take this node: 0 of 3 hosts fit (2 short of cpu_cores, 2 short of node_count)."
        )
        assert (error.code, error.status) == ("no_host_available", 409)
        assert Node.objects.count() == 1
        assert_counters_exact()


def test_refusal_text_reads_like_the_contract():
    excluded = {"memory_bytes": 5, "cpu_cores": 3, "scheduling": 4, "region": 2, "disk_bytes": 0, "node_count": 0}
    assert no_host_detail(hosts_considered=12, excluded=excluded, region="eu-1") == (
        "No host can take this node: 0 of 12 hosts fit (5 short of memory_bytes, 3 short of cpu_cores, "
        "4 not automatic, 2 outside region eu-1)."
    )


def test_refusal_counts_each_host_under_its_first_filter():
    img = image(cpu=5, memory=5)
    host("sched", cpu=0, memory=0, scheduling="manual")  # scheduling only, though short too
    host("region", cpu=0, memory=0, region="other")  # region only
    host("both", cpu=4, memory=4, region="r")  # short of cpu and memory: counted under each
    host("fits", cpu=9, memory=9, region="r")
    considered, excluded, fitting = exclusions(Requirement(requested={"cpu_cores": 5, "memory_bytes": 5}, region="r"))
    assert (considered, fitting) == (4, 1)
    assert excluded == {
        "scheduling": 1,
        "region": 1,
        "cpu_cores": 1,
        "memory_bytes": 1,
        "disk_bytes": 0,
        "node_count": 0,
    }
    assert placed(img, {"region": "r"}).host.name == "fits"


def test_place_holds_the_chosen_host_locked_and_refuses_an_empty_fleet():
    with pytest.raises(NoHostAvailable) as refused:
        place(Requirement(requested={"cpu_cores": 1}))
    assert refused.value.detail == "No host can take this node: 0 of 0 hosts fit."


class TestInput:
    def test_host_id_with_placement_is_invalid(self):
        img, h = image(), host("a")
        with pytest.raises(InvalidInput) as refused:
            node_create(name="x", host_id=h.pk, image_id=img.pk, placement={"strategy": "spread"})
        assert "placement" in refused.value.extra["errors"]

    def test_force_without_host_is_invalid(self):
        img = image()
        host("a")
        with pytest.raises(InvalidInput) as refused:
            node_create(name="x", image_id=img.pk, force=True)
        assert "force" in refused.value.extra["errors"]

    @pytest.mark.parametrize(
        "placement",
        [{"strategy": "pack"}, {"region": 5}, {"spread_protocol": "yes"}, {"other": 1}, []],
    )
    def test_placement_options_are_strict(self, placement):
        img = image()
        host("a")
        with pytest.raises(InvalidInput):
            node_create(name="x", image_id=img.pk, placement=placement)
        assert Node.objects.count() == 0


class TestDrainingAndManual:
    def test_draining_refuses_named_and_forced_creates(self):
        img = image()
        h = host("d", scheduling="draining")
        overcommitter = UserFactory(permissions=["hosts.overcommit_host"])
        for force in (False, True):
            with pytest.raises(HostUnavailable) as refused:
                node_create(name="x", host_id=h.pk, image_id=img.pk, force=force, actor=overcommitter)
            assert refused.value.extra == {"host": "d", "scheduling": "draining"}
            assert (refused.value.code, refused.value.status) == ("host_unavailable", 409)
        assert Node.objects.count() == 0

    def test_draining_is_checked_after_input_image_and_overflow_and_before_capacity(self):
        h = host("d", cpu=1, scheduling="draining")
        with pytest.raises(InvalidInput):  # unknown property: input comes first
            node_create(name="x", host_id=h.pk, image_id=image().pk, properties={"nope": "1"})
        with pytest.raises(HostUnavailable):  # would not fit either: draining comes first
            node_create(name="x", host_id=h.pk, image_id=image(cpu=5).pk)

    def test_a_draining_hosts_nodes_may_be_upgraded_and_deleted(self):
        small, big = image(cpu=1), image(cpu=2)
        h = host("d")
        node = place_node(host=h, image=small)
        Host.objects.filter(pk=h.pk).update(scheduling="draining")
        node_upgrade(node_id=node.pk, image_id=big.pk)
        node_delete(node_id=node.pk)
        assert_counters_exact()

    def test_manual_takes_nodes_that_name_it(self):
        img = image()
        h = host("m", scheduling="manual")
        assert node_create(name="x", host_id=h.pk, image_id=img.pk).host == h
        with pytest.raises(NoHostAvailable) as refused:
            placed(img)
        assert refused.value.extra["excluded"]["scheduling"] == 1


class TestCapacityRulesWithTheModel:
    """§2's rules read allocatable: reserves, ratios and slots."""

    def test_create_fits_allocatable_exactly_and_not_one_more(self):
        img = image(cpu=3, memory=0, disk=0)
        h = host("h", cpu=8, reserved_cpu_cores=2, cpu_allocation_ratio=Decimal("1.5"))  # 9
        for n in range(3):
            node_create(name=f"n{n}", host_id=h.pk, image_id=img.pk)
        with pytest.raises(InsufficientCapacity) as refused:
            node_create(name="n4", host_id=h.pk, image_id=img.pk)
        assert refused.value.extra["shortfalls"] == [{"resource": "cpu_cores", "requested": 3, "available": 0}]

    def test_slots_refuse_with_node_count_and_force_passes_them(self):
        img = image(cpu=0, memory=0, disk=0)
        h = host("h", max_nodes=1)
        node_create(name="a", host_id=h.pk, image_id=img.pk)
        with pytest.raises(InsufficientCapacity) as refused:
            node_create(name="b", host_id=h.pk, image_id=img.pk)
        assert refused.value.extra["shortfalls"] == [{"resource": "node_count", "requested": 1, "available": 0}]
        assert "no free node slot on h" in refused.value.detail
        node_create(name="b", host_id=h.pk, image_id=img.pk, force=True)
        assert Host.objects.get(pk=h.pk).node_count == 2
        assert_counters_exact()

    def test_upgrade_reads_allocatable_and_shrinking_is_always_allowed(self):
        small, big = image(cpu=1), image(cpu=4)
        h = host("h", cpu=10, reserved_cpu_cores=7)  # allocatable 3
        node = place_node(host=h, image=small)
        with pytest.raises(InsufficientCapacity) as refused:
            node_upgrade(node_id=node.pk, image_id=big.pk)
        assert refused.value.extra["shortfalls"] == [{"resource": "cpu_cores", "requested": 3, "available": 2}]
        node_upgrade(node_id=node.pk, image_id=big.pk, force=True)  # now over allocatable
        Node.objects.filter(pk=node.pk).update(state="running")
        from nodes.models import Command

        Command.objects.update(status="succeeded")
        node_upgrade(node_id=node.pk, image_id=small.pk)  # shrinking: allowed while over
        assert_counters_exact()

    def test_reserve_above_capacity_leaves_nothing(self):
        img = image(cpu=1, memory=0, disk=0)
        h = host("h", cpu=4, reserved_cpu_cores=9)
        with pytest.raises(InsufficientCapacity) as refused:
            node_create(name="a", host_id=h.pk, image_id=img.pk)
        assert refused.value.extra["shortfalls"] == [{"resource": "cpu_cores", "requested": 1, "available": 0}]
        zero = image(cpu=0, memory=0, disk=0)  # needs nothing: fits even there
        node_create(name="b", host_id=h.pk, image_id=zero.pk)
