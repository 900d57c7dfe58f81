"""node_upgrade: every case of §2, each asserting the node, the host's counters, NodeLog and Command."""

import pytest
from django.db import connection

from config.errors import (
    AlreadyOnImage,
    CounterDrift,
    IncompatibleImage,
    InsufficientCapacity,
    InvalidImageConfig,
    NotFound,
    ResourceOverflow,
)
from config.units import BIGINT_MAX
from hosts.models import Host
from nodes.changes import node_upgrade, node_upgrade_plan
from nodes.models import Command, Node, NodeLog
from tests.factories import GiB, HostFactory, ImageFactory, ImagePropertyFactory, TiB, UserFactory, place_node
from tests.invariants import assert_counters_exact
from tests.support import fleet_snapshot

pytestmark = pytest.mark.django_db


def allocation(obj, prefix=""):
    return tuple(getattr(obj, prefix + name) for name in ("cpu_cores", "memory_bytes", "disk_bytes"))


def counters(host):
    host.refresh_from_db()
    return (host.node_count, host.node_cpu_cores, host.node_memory_bytes, host.node_disk_bytes)


@pytest.fixture
def host():
    return HostFactory(cpu_cores=32, memory_bytes=128 * GiB, disk_bytes=4 * TiB)


def test_upgrade_from_high_to_low_requirements(host):
    big = ImageFactory(min_cpu_cores=8, min_memory_bytes=32 * GiB, min_disk_bytes=2 * TiB)
    small = ImageFactory(min_cpu_cores=2, min_memory_bytes=8 * GiB, min_disk_bytes=500 * GiB)
    node = place_node(host=host, image=big)
    user = UserFactory()

    outcome = node_upgrade(node_id=node.pk, image_id=small.pk, actor=user, source="cli")

    node.refresh_from_db()
    assert node.image_id == small.pk
    assert node.state == "upgrading"
    assert allocation(node) == (2, 8 * GiB, 500 * GiB)
    assert counters(host) == (1, 2, 8 * GiB, 500 * GiB)
    assert outcome.delta.as_dict() == {"cpu_cores": -6, "memory_bytes": -24 * GiB, "disk_bytes": -1548 * GiB}
    assert (outcome.host.node_cpu_cores, outcome.host.node_memory_bytes) == (2, 8 * GiB)
    log = NodeLog.objects.get(event="upgrade_started")
    assert (log.node_id, log.node_name, log.host_id) == (node.pk, node.name, host.pk)
    assert (log.old_image_id, log.new_image_id, log.actor, log.source) == (big.pk, small.pk, user, "cli")
    assert allocation(log, "old_") == (8, 32 * GiB, 2 * TiB)
    assert allocation(log, "new_") == (2, 8 * GiB, 500 * GiB)
    command = Command.objects.get(kind="node_upgrade")
    assert (command.host_id, command.node_id, command.status) == (host.pk, node.pk, "pending")
    assert command.payload["to"]["image_id"] == str(small.pk)
    assert command.payload["from"]["image_id"] == str(big.pk)
    assert_counters_exact()


def test_upgrade_from_low_to_high_requirements(host):
    small = ImageFactory(min_cpu_cores=2, min_memory_bytes=8 * GiB, min_disk_bytes=500 * GiB)
    big = ImageFactory(min_cpu_cores=8, min_memory_bytes=32 * GiB, min_disk_bytes=2 * TiB)
    node = place_node(host=host, image=small)

    node_upgrade(node_id=node.pk, image_id=big.pk)

    node.refresh_from_db()
    assert allocation(node) == (8, 32 * GiB, 2 * TiB)
    assert counters(host) == (1, 8, 32 * GiB, 2 * TiB)
    assert NodeLog.objects.filter(event="upgrade_started", new_image=big).count() == 1
    assert Command.objects.filter(kind="node_upgrade", node_id=node.pk).count() == 1
    assert_counters_exact()


def test_upgrade_to_another_version_with_the_same_requirements_changes_no_counter(host):
    first, second = ImageFactory(), ImageFactory()
    node = place_node(host=host, image=first)
    before = counters(host)

    outcome = node_upgrade(node_id=node.pk, image_id=second.pk)

    assert outcome.delta.as_dict() == {"cpu_cores": 0, "memory_bytes": 0, "disk_bytes": 0}
    assert counters(host) == before
    node.refresh_from_db()
    assert (node.image_id, node.state) == (second.pk, "upgrading")
    assert NodeLog.objects.filter(event="upgrade_started").count() == 1
    assert Command.objects.filter(kind="node_upgrade").count() == 1


def test_upgrade_to_a_zero_requirement_image(host):
    node = place_node(host=host, image=ImageFactory())
    empty = ImageFactory(min_cpu_cores=0, min_memory_bytes=0, min_disk_bytes=0)

    node_upgrade(node_id=node.pk, image_id=empty.pk)

    node.refresh_from_db()
    assert allocation(node) == (0, 0, 0)
    assert counters(host) == (1, 0, 0, 0)
    assert allocation(NodeLog.objects.get(event="upgrade_started"), "new_") == (0, 0, 0)


def test_several_upgrades_on_one_host_accumulate_exactly(host):
    images = [ImageFactory(min_cpu_cores=c, min_memory_bytes=c * GiB, min_disk_bytes=c * 10 * GiB) for c in (1, 3, 5)]
    nodes = [place_node(host=host, image=images[0]) for _ in range(4)]

    for step, node in enumerate(nodes):
        node_upgrade(node_id=node.pk, image_id=images[1 + step % 2].pk)
    node_upgrade(node_id=nodes[0].pk, image_id=images[0].pk)  # a downgrade is allowed

    # nodes: image0 (1), image2 (5), image1 (3), image2 (5)
    assert counters(host) == (4, 14, 14 * GiB, 140 * GiB)
    assert NodeLog.objects.filter(event="upgrade_started").count() == 5
    assert Command.objects.filter(kind="node_upgrade").count() == 5
    assert_counters_exact()


def test_upgrading_a_node_that_is_upgrading_supersedes_the_older_command(host):
    a, b, c = ImageFactory(), ImageFactory(min_cpu_cores=3), ImageFactory(min_cpu_cores=4)
    node = place_node(host=host, image=a)

    node_upgrade(node_id=node.pk, image_id=b.pk)
    node_upgrade(node_id=node.pk, image_id=c.pk)

    # §2/§9: the pending command is superseded; the new one's `from` is what the host still runs.
    older, newest = Command.objects.filter(node_id=node.pk, kind="node_upgrade").order_by("id")
    assert (older.status, older.payload["to"]["image_id"]) == ("superseded", str(b.pk))
    assert (newest.status, newest.payload["to"]["image_id"]) == ("pending", str(c.pk))
    assert newest.payload["from"] == older.payload["from"]
    assert newest.payload["from"]["image_id"] == str(a.pk)
    assert counters(host)[1] == 4


# --- carry-over ---------------------------------------------------------------------------------


def test_a_changed_property_value_is_kept_and_adds_on_the_new_image(host):
    old = ImageFactory()
    ImagePropertyFactory(image=old, key="sync_mode", default_value="snap", add_disk_bytes=1 * TiB)
    new = ImageFactory()
    ImagePropertyFactory(image=new, key="sync_mode", default_value="snap", add_cpu_cores=2, add_disk_bytes=2 * TiB)
    node = place_node(host=host, image=old, properties={"sync_mode": "archive"})
    assert counters(host) == (1, 2, 8 * GiB, 500 * GiB + 1 * TiB)

    node_upgrade(node_id=node.pk, image_id=new.pk)

    node.refresh_from_db()
    assert node.properties == {"sync_mode": "archive"}
    assert allocation(node) == (4, 8 * GiB, 500 * GiB + 2 * TiB)
    assert counters(host) == (1, 4, 8 * GiB, 500 * GiB + 2 * TiB)
    assert_counters_exact()


def test_a_value_equal_to_the_default_adds_nothing(host):
    old = ImageFactory()
    ImagePropertyFactory(image=old, key="rpc", default_value="off", add_cpu_cores=1)
    new = ImageFactory()
    ImagePropertyFactory(image=new, key="rpc", default_value="off", add_cpu_cores=4)
    node = place_node(host=host, image=old, properties={"rpc": "off"})

    node_upgrade(node_id=node.pk, image_id=new.pk)

    node.refresh_from_db()
    assert (node.properties, node.cpu_cores) == ({"rpc": "off"}, 2)


def test_a_value_equal_to_the_old_default_takes_the_new_default(host):
    old = ImageFactory()
    ImagePropertyFactory(image=old, key="mode", default_value="snap")
    new = ImageFactory()
    ImagePropertyFactory(image=new, key="mode", default_value="full", add_cpu_cores=3)
    node = place_node(host=host, image=old)

    node_upgrade(node_id=node.pk, image_id=new.pk)

    node.refresh_from_db()
    assert (node.properties, node.cpu_cores) == ({"mode": "full"}, 2)


def test_negative_adds_floor_at_the_minimum(host):
    old = ImageFactory()
    ImagePropertyFactory(image=old, key="pruning", default_value="off")
    new = ImageFactory(min_memory_bytes=8 * GiB)
    ImagePropertyFactory(image=new, key="pruning", default_value="off", add_memory_bytes=-16 * GiB)
    node = place_node(host=host, image=old, properties={"pruning": "on"})

    node_upgrade(node_id=node.pk, image_id=new.pk)

    node.refresh_from_db()
    assert node.memory_bytes == 8 * GiB
    assert counters(host)[2] == 8 * GiB


def test_keys_the_new_image_lacks_are_dropped(host):
    old = ImageFactory()
    ImagePropertyFactory(image=old, key="legacy", default_value="off", add_cpu_cores=2)
    new = ImageFactory()
    ImagePropertyFactory(image=new, key="rpc", default_value="off")
    node = place_node(host=host, image=old, properties={"legacy": "on"})
    assert node.cpu_cores == 4

    node_upgrade(node_id=node.pk, image_id=new.pk)

    node.refresh_from_db()
    assert (node.properties, node.cpu_cores) == ({"rpc": "off"}, 2)
    assert counters(host)[1] == 2


@pytest.mark.parametrize("stored", [None, ["rpc", "on"], "rpc=on", {"rpc": 1, "mode": "x"}])
def test_a_missing_or_corrupt_config_still_upgrades_with_a_warning_in_nodelog(host, stored, caplog):
    old = ImageFactory()
    new = ImageFactory(min_cpu_cores=3)
    ImagePropertyFactory(image=new, key="rpc", default_value="off", add_cpu_cores=5)
    node = place_node(host=host, image=old)
    Node.objects.filter(pk=node.pk).update(properties=stored)  # old data, written around the services

    outcome = node_upgrade(node_id=node.pk, image_id=new.pk)

    node.refresh_from_db()
    assert node.properties == {"rpc": "off"}
    assert allocation(node) == (3, 8 * GiB, 500 * GiB)
    assert allocation(NodeLog.objects.get(event="upgrade_started"), "old_") == (2, 8 * GiB, 500 * GiB)
    assert outcome.warnings
    assert NodeLog.objects.get(event="upgrade_started").warnings == outcome.warnings
    assert any(record.levelname == "WARNING" and node.name in record.getMessage() for record in caplog.records)
    assert_counters_exact()


def test_the_old_side_is_the_recorded_allocation_even_when_it_disagrees_with_the_config(host):
    old, new = ImageFactory(), ImageFactory(min_cpu_cores=5)
    node = place_node(host=host, image=old)
    Node.objects.filter(pk=node.pk).update(cpu_cores=7)  # allocation drifted from its config...
    Host.objects.filter(pk=host.pk).update(node_cpu_cores=7)  # ...and the counters hold it

    node_upgrade(node_id=node.pk, image_id=new.pk)

    assert counters(host)[1] == 5
    assert NodeLog.objects.get(event="upgrade_started").old_cpu_cores == 7


# --- refusals change nothing --------------------------------------------------------------------


def refused(error_class, **kwargs):
    before = fleet_snapshot()
    with pytest.raises(error_class) as caught:
        node_upgrade(**kwargs)
    assert fleet_snapshot() == before
    return caught.value


def test_upgrade_to_the_current_image_is_refused(host):
    image = ImageFactory()
    node = place_node(host=host, image=image)
    error = refused(AlreadyOnImage, node_id=node.pk, image_id=image.pk)
    assert (error.code, error.status) == ("already_on_image", 409)


def test_upgrade_to_another_protocol_is_refused(host):
    node = place_node(host=host, image=ImageFactory(protocol="ethereum"))
    error = refused(IncompatibleImage, node_id=node.pk, image_id=ImageFactory(protocol="bitcoin").pk)
    assert (error.code, error.status) == ("incompatible_image", 422)
    assert "bitcoin" in error.detail


def test_unknown_node_or_image_is_not_found(host):
    node = place_node(host=host, image=ImageFactory())
    assert refused(NotFound, node_id="8d6d8f0e-0000-4000-8000-000000000000", image_id=node.image_id).status == 404
    assert refused(NotFound, node_id=node.pk, image_id="8d6d8f0e-0000-4000-8000-000000000000").status == 404
    assert refused(NotFound, node_id="not-a-uuid", image_id=node.image_id).code == "not_found"


def test_over_capacity_is_refused_with_shortfalls_and_human_detail():
    host = HostFactory(cpu_cores=4, memory_bytes=16 * GiB, disk_bytes=2 * TiB)
    node = place_node(host=host, image=ImageFactory(min_cpu_cores=2, min_memory_bytes=8 * GiB))
    big = ImageFactory(min_cpu_cores=2, min_memory_bytes=28 * GiB)

    error = refused(InsufficientCapacity, node_id=node.pk, image_id=big.pk)

    assert (error.code, error.status, error.extra["host"]) == ("insufficient_capacity", 409, host.name)
    assert error.extra["shortfalls"] == [{"resource": "memory_bytes", "requested": 20 * GiB, "available": 8 * GiB}]
    assert error.detail == f"not enough memory on {host.name} (needs 20.0 GiB, 8.0 GiB free)"


def test_force_places_past_capacity_and_is_logged():
    host = HostFactory(cpu_cores=4, memory_bytes=16 * GiB, disk_bytes=2 * TiB)
    node = place_node(host=host, image=ImageFactory())
    big = ImageFactory(min_cpu_cores=16)

    node_upgrade(node_id=node.pk, image_id=big.pk, force=True)

    assert counters(host)[1] == 16
    log = NodeLog.objects.get(event="upgrade_started")
    assert (log.forced, log.force_requested) == (True, True)
    assert_counters_exact()


def test_force_that_was_not_needed_is_recorded_as_requested_not_forced():
    node = place_node(host=HostFactory(cpu_cores=64), image=ImageFactory())

    node_upgrade(node_id=node.pk, image_id=ImageFactory(min_cpu_cores=4).pk, force=True)

    log = NodeLog.objects.get(event="upgrade_started")
    assert (log.forced, log.force_requested) == (False, True)


def test_shrinking_on_a_host_already_over_capacity_is_allowed():
    host = HostFactory(cpu_cores=4, memory_bytes=16 * GiB, disk_bytes=2 * TiB)
    node = place_node(host=host, image=ImageFactory(min_cpu_cores=16), force=True)
    place_node(host=host, image=ImageFactory(), force=True)
    smaller = ImageFactory(min_cpu_cores=8, min_disk_bytes=600 * GiB)  # CPU shrinks, disk grows but fits

    node_upgrade(node_id=node.pk, image_id=smaller.pk)

    assert counters(host)[1] == 10  # still over capacity (4), but less so


def test_a_counter_that_would_go_negative_is_refused_as_drift(host):
    node = place_node(host=host, image=ImageFactory(min_memory_bytes=16 * GiB))
    Host.objects.filter(pk=host.pk).update(node_memory_bytes=1 * GiB)  # drift written around the app
    small = ImageFactory(min_memory_bytes=8 * GiB)

    error = refused(CounterDrift, node_id=node.pk, image_id=small.pk)

    assert (error.code, error.status) == ("counter_drift", 409)
    assert error.extra == {"host": host.name, "resource": "memory_bytes"}
    assert "repair_counters" in error.detail


def test_an_allocation_beyond_64_bits_is_refused():
    host = HostFactory(cpu_cores=BIGINT_MAX)
    node = place_node(host=host, image=ImageFactory())
    huge = ImageFactory(min_cpu_cores=BIGINT_MAX - 1)
    ImagePropertyFactory(image=huge, key="turbo", default_value="off", add_cpu_cores=5)
    Node.objects.filter(pk=node.pk).update(properties={"turbo": "on"})

    error = refused(ResourceOverflow, node_id=node.pk, image_id=huge.pk)
    assert (error.code, error.extra) == ("resource_overflow", {"resource": "cpu_cores"})


def test_a_counter_beyond_64_bits_is_refused():
    host = HostFactory(disk_bytes=BIGINT_MAX)
    node = place_node(host=host, image=ImageFactory(min_disk_bytes=0))
    place_node(host=host, image=ImageFactory(min_disk_bytes=BIGINT_MAX - 10))
    huge = ImageFactory(min_disk_bytes=100)  # each fits alone; the counter would pass 2**63-1

    error = refused(ResourceOverflow, node_id=node.pk, image_id=huge.pk)
    assert error.extra == {"resource": "disk_bytes"}
    assert "node_disk_bytes" in error.detail


@pytest.mark.parametrize("field", ["min_cpu_cores", "min_memory_bytes", "min_disk_bytes"])
def test_image_rows_with_invalid_requirements_are_refused(host, field):
    node = place_node(host=host, image=ImageFactory())
    bad = ImageFactory()
    with connection.cursor() as cursor:  # written around validation
        cursor.execute(f"UPDATE nodes_image SET {field} = -1 WHERE id = %s", [bad.pk])

    error = refused(InvalidImageConfig, node_id=node.pk, image_id=bad.pk)
    assert (error.code, error.status) == ("invalid_image_config", 422)
    assert field in error.detail


def test_checks_run_in_the_contracts_order(host):
    """Another protocol *and* over capacity: the protocol check comes first."""
    node = place_node(host=host, image=ImageFactory(protocol="ethereum"))
    error = refused(IncompatibleImage, node_id=node.pk, image_id=ImageFactory(protocol="bitcoin", min_cpu_cores=999).pk)
    assert error.code == "incompatible_image"


def test_a_retry_after_the_cause_is_gone_succeeds():
    host = HostFactory(cpu_cores=4)
    node = place_node(host=host, image=ImageFactory())
    big = ImageFactory(min_cpu_cores=6)
    refused(InsufficientCapacity, node_id=node.pk, image_id=big.pk)

    Host.objects.filter(pk=host.pk).update(cpu_cores=8)
    node_upgrade(node_id=node.pk, image_id=big.pk)

    assert counters(host)[1] == 6


# --- dry run --------------------------------------------------------------------------------------


def test_a_plan_computes_the_upgrade_and_writes_nothing():
    host = HostFactory(cpu_cores=4, memory_bytes=16 * GiB, disk_bytes=2 * TiB)
    node = place_node(host=host, image=ImageFactory())
    big = ImageFactory(min_cpu_cores=6)
    before = fleet_snapshot()

    plan = node_upgrade_plan(node_id=node.pk, image_id=big.pk)

    assert fleet_snapshot() == before
    assert plan.delta.cpu_cores == 4
    assert plan.fits == {"cpu_cores": False, "memory_bytes": True, "disk_bytes": True}
    assert plan.host.node_cpu_cores == 6  # as it would be after
    assert isinstance(plan.error, InsufficientCapacity)
    assert node_upgrade_plan(node_id=node.pk, image_id=big.pk, force=True).error is None


def test_a_plan_to_the_current_image_reports_the_refusal():
    node = place_node(host=HostFactory(), image=(image := ImageFactory()))
    plan = node_upgrade_plan(node_id=node.pk, image_id=image.pk)
    assert isinstance(plan.error, AlreadyOnImage)
    assert plan.delta.as_dict() == {"cpu_cores": 0, "memory_bytes": 0, "disk_bytes": 0}


# --- query counts ---------------------------------------------------------------------------------


def upgrade_queries(django_assert_max_num_queries, nodes_on_host, properties_per_image):
    host = HostFactory(cpu_cores=10_000, memory_bytes=10_000 * GiB, disk_bytes=10_000 * TiB)
    old, new = ImageFactory(), ImageFactory(min_cpu_cores=3)
    for number in range(properties_per_image):
        ImagePropertyFactory(image=old, key=f"k{number}", add_cpu_cores=1)
        ImagePropertyFactory(image=new, key=f"k{number}", add_cpu_cores=1)
    node = place_node(host=host, image=old, properties={"k0": "on"} if properties_per_image else {})
    for _ in range(nodes_on_host - 1):
        place_node(host=host, image=old)
    with django_assert_max_num_queries(10) as captured:
        node_upgrade(node_id=node.pk, image_id=new.pk)
    return len(captured)


def test_one_upgrade_runs_a_bounded_number_of_queries_whatever_the_fleet(django_assert_max_num_queries):
    small = upgrade_queries(django_assert_max_num_queries, nodes_on_host=1, properties_per_image=1)
    large = upgrade_queries(django_assert_max_num_queries, nodes_on_host=40, properties_per_image=25)
    assert small == large
