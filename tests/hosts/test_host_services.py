"""host_create / host_update (§11): strict input, the row lock, over-allocation named."""

import logging
import threading
from decimal import Decimal

import pytest
from django.db import connection

from config.errors import InvalidInput, NotFound
from hosts.models import Host
from hosts.services import host_create, host_update, ratio_value
from tests.factories import HostFactory, ImageFactory, place_node
from tests.invariants import assert_counters_exact
from tests.support import host_lock_held

pytestmark = pytest.mark.django_db


def test_create_with_defaults_and_allocatable_returned():
    written = host_create(values={"name": "h", "cpu_cores": 8, "memory_bytes": 16, "disk_bytes": 32})
    host = written.host
    assert (host.allocatable_cpu_cores, host.allocatable_memory_bytes, host.allocatable_disk_bytes) == (8, 16, 32)
    assert written.over_allocated == []
    assert Host.objects.get(name="h").scheduling == "automatic"


def test_create_with_the_model():
    written = host_create(
        values={
            "name": "h",
            "cpu_cores": 10,
            "memory_bytes": 100,
            "disk_bytes": 100,
            "reserved_cpu_cores": 2,
            "cpu_allocation_ratio": "1.5",
            "memory_allocation_ratio": 2,
            "max_nodes": 4,
            "region": "eu-1",
            "scheduling": "manual",
        }
    )
    assert written.host.allocatable() == {"cpu_cores": 12, "memory_bytes": 200, "disk_bytes": 100}
    assert written.host.cpu_allocation_ratio == Decimal("1.5000")


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"cpu_cores": -1}, "cpu_cores"),
        ({"cpu_cores": True}, "cpu_cores"),
        ({"cpu_cores": "8"}, "cpu_cores"),
        ({"cpu_cores": 2**63}, "cpu_cores"),
        ({"cpu_allocation_ratio": "1.00001"}, "cpu_allocation_ratio"),
        ({"cpu_allocation_ratio": 0}, "cpu_allocation_ratio"),
        ({"cpu_allocation_ratio": "1000.0001"}, "cpu_allocation_ratio"),
        ({"cpu_allocation_ratio": "NaN"}, "cpu_allocation_ratio"),
        ({"cpu_allocation_ratio": True}, "cpu_allocation_ratio"),
        ({"max_nodes": -1}, "max_nodes"),
        ({"scheduling": "never"}, "scheduling"),
        ({"region": 3}, "region"),
        ({"node_count": 0}, "node_count"),
        ({"node_cpu_cores": 5}, "node_cpu_cores"),
        ({"allocatable_cpu_cores": 5}, "allocatable_cpu_cores"),
        ({"name": ""}, "name"),
    ],
)
def test_input_is_strict(values, field):
    with pytest.raises(InvalidInput) as refused:
        host_create(values={"name": "h", "cpu_cores": 8, "memory_bytes": 16, "disk_bytes": 32, **values})
    assert field in refused.value.extra["errors"]
    assert Host.objects.count() == 0


def test_ratio_forms():
    assert ratio_value("1.5") == ratio_value(1.5) == ratio_value("1.50000") == Decimal("1.5000")
    assert ratio_value(1000) == Decimal("1000.0000")


def test_create_needs_capacity_and_a_unique_name():
    with pytest.raises(InvalidInput) as refused:
        host_create(values={"name": "h"})
    assert set(refused.value.extra["errors"]) == {"cpu_cores", "memory_bytes", "disk_bytes"}
    HostFactory(name="h")
    with pytest.raises(InvalidInput) as refused:
        host_create(values={"name": "h", "cpu_cores": 8, "memory_bytes": 16, "disk_bytes": 32})
    assert refused.value.extra["errors"] == {"name": ["A host with this name already exists."]}


def test_update_names_what_is_now_over_and_logs_a_warning(caplog):
    host = HostFactory(cpu_cores=8, max_nodes=None)
    image = ImageFactory(min_cpu_cores=3)
    place_node(host=host, image=image)
    place_node(host=host, image=image)
    with caplog.at_level(logging.WARNING, logger="hosts.services"):
        written = host_update(host_id=host.pk, values={"reserved_cpu_cores": 4, "max_nodes": 1})
    assert written.over_allocated == ["cpu_cores", "node_count"]
    assert written.host.allocatable_cpu_cores == 4
    assert written.changed == ["max_nodes", "reserved_cpu_cores"]
    [line] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "host_over_allocated" in line and "cpu_cores" in line and "node_count" in line
    # Counters untouched, still the nodes' sum.
    fresh = Host.objects.get(pk=host.pk)
    assert (fresh.node_count, fresh.node_cpu_cores) == (2, 6)
    assert_counters_exact()
    assert host_update(host_id=host.pk, values={"reserved_cpu_cores": 0, "max_nodes": None}).over_allocated == []


def test_update_of_a_missing_host_is_not_found():
    with pytest.raises(NotFound):
        host_update(host_id="4a5892ab-1f6f-4eee-8a31-8aa2c407c3a1", values={"region": "x"})
    with pytest.raises(NotFound):
        host_update(host_id="nope", values={"region": "x"})


@pytest.mark.django_db(transaction=True)
def test_update_takes_the_hosts_row_lock():
    host = HostFactory(cpu_cores=8)
    done = threading.Event()

    def update():
        try:
            host_update(host_id=host.pk, values={"cpu_cores": 4})
            done.set()
        finally:
            connection.close()

    with host_lock_held(host.pk):
        thread = threading.Thread(target=update)
        thread.start()
        assert not done.wait(0.5), "host_update must wait for the row lock a node change holds"
    thread.join(10)
    assert done.is_set()
    assert Host.objects.get(pk=host.pk).allocatable_cpu_cores == 4
