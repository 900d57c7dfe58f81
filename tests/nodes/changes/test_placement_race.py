"""Placements racing each other, upgrades and deletes — PostgreSQL, real commits, a thread
(and a connection) each: exactly as many succeed as the region has room for, nobody passes
allocatable or max_nodes, the counters never drift, and nothing fails but `no_host_available`."""

import itertools
import random
from decimal import Decimal

import pytest

from config.errors import AlreadyOnImage, InsufficientCapacity, NodeBusy, NoHostAvailable, NotFound
from hosts.capacity import over_allocated
from hosts.models import Host
from nodes.changes import node_create, node_delete, node_upgrade
from nodes.models import Node
from tests.factories import HostFactory, ImageFactory, place_node
from tests.invariants import assert_counters_exact
from tests.nodes.changes.test_concurrency import in_threads

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 8
ATTEMPTS = 4  # per thread: 32 attempts for 14 places


def region_with_room_for_14(region="eu-1"):
    """Room for exactly 14 nodes of cpu 1 / memory 1: 3 by cpu on each of three hosts (one by
    its reserve and one by its ratio), 2 by slots, 3 by memory; and hosts that must stay empty."""
    hosts = [
        HostFactory(name="r-a", region=region, cpu_cores=3, memory_bytes=100, disk_bytes=100),
        HostFactory(name="r-b", region=region, cpu_cores=5, reserved_cpu_cores=2, memory_bytes=100, disk_bytes=100),
        HostFactory(
            name="r-c",
            region=region,
            cpu_cores=2,
            cpu_allocation_ratio=Decimal("1.5"),
            memory_bytes=100,
            disk_bytes=100,
        ),
        HostFactory(name="r-d", region=region, cpu_cores=100, max_nodes=2, memory_bytes=100, disk_bytes=100),
        HostFactory(name="r-e", region=region, cpu_cores=100, memory_bytes=3, disk_bytes=100),
    ]
    # Room outside the placement: another region, a manual and a draining host.
    HostFactory(name="x-other", region="us-1", cpu_cores=100, memory_bytes=100, disk_bytes=100)
    HostFactory(name="x-manual", region=region, scheduling="manual", cpu_cores=100, memory_bytes=100, disk_bytes=100)
    HostFactory(name="x-drain", region=region, scheduling="draining", cpu_cores=100, memory_bytes=100, disk_bytes=100)
    return hosts


def assert_nobody_past_allocatable():
    over = {host.name: over_allocated(host) for host in Host.objects.all() if over_allocated(host)}
    assert over == {}


def race(placement, threads=THREADS, attempts=ATTEMPTS, extra=None):
    image = ImageFactory(min_cpu_cores=1, min_memory_bytes=1, min_disk_bytes=1)
    hosts = region_with_room_for_14()
    names = itertools.count()
    placed, refused = [], []

    def work(index):
        if extra is not None and index == 0:
            return extra(hosts)
        for _ in range(attempts):
            try:
                change = node_create(name=f"n-{next(names)}", image_id=image.pk, placement=placement)
                placed.append(change.host.name)
            except NoHostAvailable as error:
                refused.append(error)

    errors = in_threads(threads, work)
    return image, hosts, placed, refused, errors


@pytest.mark.parametrize(
    "placement",
    [{"region": "eu-1"}, {"region": "eu-1", "strategy": "spread"}, {"region": "eu-1", "spread_protocol": True}],
    ids=["binpack", "spread", "spread_protocol"],
)
def test_exactly_the_room_is_placed(placement):
    _image, _hosts, placed, refused, errors = race(placement)
    assert errors == []
    assert refused, "the race must run the region out of room"
    assert len(placed) == 14
    assert Node.objects.filter(host__region="eu-1", host__scheduling="automatic").count() == 14
    assert Node.objects.filter(host__name__startswith="x-").count() == 0
    assert sorted(placed) == sorted(["r-a"] * 3 + ["r-b"] * 3 + ["r-c"] * 3 + ["r-d"] * 2 + ["r-e"] * 3)
    for error in refused:
        assert error.extra["hosts_considered"] == 8
        assert error.extra["excluded"]["scheduling"] == 2
        assert error.extra["excluded"]["region"] == 1
    assert_nobody_past_allocatable()
    assert_counters_exact()


def test_placements_racing_upgrades_and_deletes_on_the_same_hosts():
    small = ImageFactory(min_cpu_cores=1, min_memory_bytes=1, min_disk_bytes=1, protocol="eth")
    big = ImageFactory(min_cpu_cores=2, min_memory_bytes=1, min_disk_bytes=1, protocol="eth")
    hosts = [HostFactory(name=f"h{i}", cpu_cores=6, memory_bytes=100, disk_bytes=100) for i in range(3)]
    seeded = [place_node(host=host, image=small) for host in hosts for _ in range(2)]
    names = itertools.count()
    outcomes = []

    def placer(index):
        for _ in range(6):
            try:
                node_create(name=f"p{index}-{next(names)}", image_id=small.pk)
                outcomes.append("placed")
            except NoHostAvailable:
                outcomes.append("refused")

    def upgrader(index):
        rng = random.Random(index)
        for node in rng.sample(seeded, len(seeded)):
            try:
                node_upgrade(node_id=node.pk, image_id=big.pk)
                outcomes.append("upgraded")
            except (AlreadyOnImage, NodeBusy, NotFound, InsufficientCapacity):
                pass  # fair answers: a deleter got there first, or the placers filled the host

    def deleter(index):
        for node in seeded[::2]:
            node_delete(node_id=node.pk)
            outcomes.append("deleted")

    def work(index):
        return (placer, placer, placer, placer, upgrader, deleter)[index](index)

    assert in_threads(6, work) == []
    assert outcomes.count("deleted") == 3
    assert "placed" in outcomes
    assert_nobody_past_allocatable()
    assert_counters_exact()


def test_a_placement_waits_for_hosts_merely_locked_and_holds_one_lock_only():
    """Both hosts locked by another session, which fills the best one and commits: the
    placement waits (never refuses), finds the best full under its lock, releases it and takes
    the other — holding that one lock alone while its transaction is open."""
    import threading

    from django.db import connection, connections, transaction

    from hosts.placement import Requirement, place

    best = HostFactory(name="a-best", cpu_cores=2, memory_bytes=100, disk_bytes=100)
    other = HostFactory(name="b-other", cpu_cores=100, memory_bytes=100, disk_bytes=100)
    Host.objects.filter(pk=best.pk).update(node_cpu_cores=1)  # binpack's favourite (no nodes: drift is fine here)
    holder = connections.create_connection("default")
    holder_cursor = holder.cursor()
    holder_cursor.execute("BEGIN")
    holder_cursor.execute("SELECT 1 FROM hosts_host WHERE id IN (%s, %s) FOR UPDATE", [best.pk, other.pk])
    chosen, done, finish = [], threading.Event(), threading.Event()

    def placing():
        try:
            with transaction.atomic():
                chosen.append(place(Requirement(requested={"cpu_cores": 1})).name)
                done.set()
                finish.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=placing)
    thread.start()
    try:
        assert not done.wait(0.5), "the placement must wait for the locked hosts, not refuse"
        holder_cursor.execute("UPDATE hosts_host SET node_cpu_cores = 2 WHERE id = %s", [best.pk])
        holder_cursor.execute("COMMIT")
        assert done.wait(10)
        assert chosen == ["b-other"]
        probe = connections.create_connection("default")
        with probe.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute("SELECT 1 FROM hosts_host WHERE id = %s FOR UPDATE NOWAIT", [best.pk])  # released
            from django.db import OperationalError

            with pytest.raises(OperationalError):
                cursor.execute("SELECT 1 FROM hosts_host WHERE id = %s FOR UPDATE NOWAIT", [other.pk])
            cursor.execute("ROLLBACK")
        probe.close()
    finally:
        finish.set()
        thread.join(10)
        holder.close()
