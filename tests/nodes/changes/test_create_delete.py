"""node_create and node_delete keep the counters exact and write NodeLog and Command with the change."""

import logging
import uuid

import pytest

from config.errors import CounterDrift, InsufficientCapacity, InvalidInput, NotFound
from hosts.models import Host
from nodes.changes import node_create, node_delete
from nodes.models import Command, Node, NodeLog
from tests.factories import GiB, HostFactory, ImageFactory, ImagePropertyFactory, TiB, place_node
from tests.hosts.drift import set_counter
from tests.invariants import assert_counters_exact

pytestmark = pytest.mark.django_db


def counters(host):
    host.refresh_from_db()
    return (host.node_count, host.node_cpu_cores, host.node_memory_bytes, host.node_disk_bytes)


def test_create_computes_the_allocation_from_the_config_and_counts_it():
    host = HostFactory()
    image = ImageFactory(min_cpu_cores=2, min_memory_bytes=8 * GiB, min_disk_bytes=500 * GiB)
    ImagePropertyFactory(image=image, key="rpc", default_value="off", add_cpu_cores=1, add_memory_bytes=2 * GiB)
    ImagePropertyFactory(image=image, key="archive", default_value="no", add_disk_bytes=1 * TiB)

    change = node_create(name="eth-1", host_id=host.pk, image_id=image.pk, properties={"rpc": "on"}, source="cli")

    node = Node.objects.get(name="eth-1")
    assert node.properties == {"rpc": "on", "archive": "no"}
    assert (node.cpu_cores, node.memory_bytes, node.disk_bytes, node.state) == (
        3,
        10 * GiB,
        500 * GiB,
        "creating",
    )  # §9: running once its agent reports
    assert counters(host) == (1, 3, 10 * GiB, 500 * GiB)
    assert change.host.node_count == 1
    log = NodeLog.objects.get()
    assert (log.event, log.node_id, log.new_image_id, log.new_cpu_cores, log.source) == (
        "created",
        node.pk,
        image.pk,
        3,
        "cli",
    )
    assert Command.objects.get().kind == "node_create"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"properties": {"nope": "1"}}, "properties"),
        ({"properties": {"rpc": 1}}, "properties"),
        ({"properties": ["rpc"]}, "properties"),
    ],
)
def test_create_refuses_bad_input_and_writes_nothing(kwargs, field):
    host, image = HostFactory(), ImageFactory()
    ImagePropertyFactory(image=image, key="rpc")
    with pytest.raises(InvalidInput) as caught:
        node_create(**{"name": "n", "host_id": host.pk, "image_id": image.pk, **kwargs})
    assert field in caught.value.extra["errors"]
    assert (Node.objects.count(), NodeLog.objects.count(), Command.objects.count()) == (0, 0, 0)
    assert counters(host) == (0, 0, 0, 0)


def test_create_refuses_a_taken_name():
    host, image = HostFactory(), ImageFactory()
    place_node(host=host, image=image, name="taken")
    with pytest.raises(InvalidInput) as caught:
        node_create(name="taken", host_id=host.pk, image_id=image.pk)
    assert "name" in caught.value.extra["errors"]
    assert counters(host)[0] == 1


def test_create_on_a_missing_host_or_image_is_not_found():
    host, image = HostFactory(), ImageFactory()
    missing = "00000000-0000-4000-8000-000000000000"
    with pytest.raises(NotFound):
        node_create(name="a", host_id=missing, image_id=image.pk)
    with pytest.raises(NotFound):
        node_create(name="a", host_id=host.pk, image_id=missing)
    assert Node.objects.count() == 0


def test_create_must_fit_unless_forced():
    host = HostFactory(cpu_cores=3)
    image = ImageFactory(min_cpu_cores=2)
    place_node(host=host, image=image)
    with pytest.raises(InsufficientCapacity):
        node_create(name="second", host_id=host.pk, image_id=image.pk)
    assert counters(host)[:2] == (1, 2)

    node_create(name="second", host_id=host.pk, image_id=image.pk, force=True)
    assert counters(host)[:2] == (2, 4)
    log = NodeLog.objects.get(node_name="second")
    assert (log.forced, log.force_requested) == (True, True)


def test_force_that_was_not_needed_is_recorded_as_requested_not_forced():
    host = HostFactory(cpu_cores=64)

    node_create(name="roomy", host_id=host.pk, image_id=ImageFactory().pk, force=True)

    log = NodeLog.objects.get(node_name="roomy")
    assert (log.forced, log.force_requested) == (False, True)


def test_a_refused_create_logs_one_line_with_its_code(caplog):
    host = HostFactory(cpu_cores=1)
    image = ImageFactory(min_cpu_cores=2)
    caplog.set_level(logging.INFO, logger="nodes.services")

    with pytest.raises(InsufficientCapacity):
        node_create(name="too-big", host_id=host.pk, image_id=image.pk, source="admin")
    with pytest.raises(InvalidInput):
        node_create(name="bad\nname", host_id=host.pk, image_id=image.pk)

    refused = [record for record in caplog.records if getattr(record, "event", None) == "create_refused"]
    assert [(r.node, r.host, r.code, r.source) for r in refused] == [
        ("too-big", str(host.pk), "insufficient_capacity", "admin"),
        ("bad\nname", str(host.pk), "invalid", "api"),
    ]
    assert refused[0].detail.startswith("not enough CPU on")


def test_a_refused_delete_logs_one_line_with_its_code(caplog):
    host = HostFactory()
    node = place_node(host=host, image=ImageFactory())
    set_counter(host, "node_count", -1)  # drift: node_count would go below zero
    caplog.set_level(logging.INFO, logger="nodes.services")

    with pytest.raises(CounterDrift):
        node_delete(node_id=node.pk)
    with pytest.raises(NotFound):
        node_delete(node_id=uuid.uuid4())

    refused = [record for record in caplog.records if getattr(record, "event", None) == "delete_refused"]
    assert [(r.node, r.code) for r in refused] == [(str(node.pk), "counter_drift"), (refused[1].node, "not_found")]


def test_delete_releases_the_allocation_and_keeps_the_history():
    host = HostFactory()
    image = ImageFactory(min_cpu_cores=3, min_memory_bytes=4 * GiB, min_disk_bytes=100 * GiB)
    keep = place_node(host=host, image=image)
    gone = place_node(host=host, image=image, name="gone")

    node_delete(node_id=gone.pk, source="admin")

    assert not Node.objects.filter(pk=gone.pk).exists()
    assert counters(host) == (1, 3, 4 * GiB, 100 * GiB)
    log = NodeLog.objects.get(event="deleted")
    assert (log.node_id, log.node_name, log.host_id, log.old_cpu_cores, log.source) == (
        gone.pk,
        "gone",
        host.pk,
        3,
        "admin",
    )
    # created + create_succeeded (its agent reported, §9) + deleted, kept after the node
    assert NodeLog.objects.filter(node_id=gone.pk).count() == 3
    assert Command.objects.filter(node_id=gone.pk, kind="node_delete", host=host).exists()
    assert Node.objects.filter(pk=keep.pk).exists()
    assert_counters_exact()


def test_delete_on_a_drifted_host_is_refused_rather_than_clamped():
    host = HostFactory()
    node = place_node(host=host, image=ImageFactory(min_cpu_cores=4))
    Host.objects.filter(pk=host.pk).update(node_cpu_cores=1)

    with pytest.raises(CounterDrift) as caught:
        node_delete(node_id=node.pk)

    assert caught.value.extra == {"host": host.name, "resource": "cpu_cores"}
    assert Node.objects.filter(pk=node.pk).exists()
    assert NodeLog.objects.filter(event="deleted").count() == 0


def test_delete_of_a_missing_node_is_not_found():
    with pytest.raises(NotFound):
        node_delete(node_id="00000000-0000-4000-8000-000000000000")


def test_create_and_delete_run_a_bounded_number_of_queries(django_assert_max_num_queries):
    host, image = HostFactory(), ImageFactory()
    ImagePropertyFactory(image=image, key="rpc")
    with django_assert_max_num_queries(11):  # the image's row is shared-locked before it is read
        node = node_create(name="q", host_id=host.pk, image_id=image.pk).node
    with django_assert_max_num_queries(9):  # + the node's active rollout rows, if any (§10)
        node_delete(node_id=node.pk)
