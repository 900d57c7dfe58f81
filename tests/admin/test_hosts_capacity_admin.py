"""The capacity model (§11) in the hosts admin: the new fields in the list and on the form,
bars against allocatable, filters by region and scheduling, the scheduling actions, and the
host form saved through hosts.services (the warning naming what is over)."""

import logging
from decimal import Decimal

import pytest
from django.contrib import messages
from django.contrib.messages import get_messages
from django.urls import reverse

from hosts.models import Host
from tests.admin.conftest import action_names, client_for, post_action, staff
from tests.factories import GiB, HostFactory, ImageFactory, TiB, place_node

pytestmark = pytest.mark.django_db

HOSTS = "admin:hosts_host_changelist"


def levels(response) -> list[tuple[int, str]]:
    return [(message.level, str(message)) for message in get_messages(response.wsgi_request)]


def fleet():
    """over-1 (eu-1, CPU x1.5 and 16 cores reserved, 4 slots, one node), plain-1 (us-1), old-1
    (no region, draining), man-1 (eu-1, manual)."""
    over = HostFactory(
        name="over-1",
        region="eu-1",
        cpu_cores=64,
        reserved_cpu_cores=16,
        cpu_allocation_ratio=Decimal("1.5"),
        max_nodes=4,
    )
    place_node(host=over, image=ImageFactory(min_cpu_cores=8, min_memory_bytes=8 * GiB, min_disk_bytes=TiB))
    HostFactory(name="plain-1", region="us-1")
    HostFactory(name="old-1", scheduling="draining")
    HostFactory(name="man-1", region="eu-1", scheduling="manual")
    return Host.objects.get(pk=over.pk)


def test_list_shows_region_scheduling_slots_ratios_and_bars_against_allocatable():
    fleet()
    page = client_for(staff()).get(reverse(HOSTS)).content.decode()
    assert "8 / 72 cores" in page  # (64 - 16) x 1.5
    assert 'title="11% of allocatable used; physical size 64 cores, 16 cores reserved, ratio 1.5"' in page
    assert 'class="nf-fill" style="width: 11.1%"' in page
    assert (
        '<span class="nf-fill" style="width: 11.1%"></span></span></div>'
        '<span class="nf-model">x1.5, 16 cores reserved</span>' in page
    )
    assert 'title="The nodes of over-1 (of 4 slots)">1 / 4</a>' in page
    assert '<span class="nf-badge nf-state nf-scheduling-draining"' in page
    assert '<span class="nf-badge nf-state nf-scheduling-manual"' in page
    assert (
        'over-1\n<br><span class="nf-where"><span class="nf-region">eu-1</span> '
        '<span class="nf-muted">automatic' in page
    )
    assert '<span class="nf-region">—</span> <span class="nf-badge nf-state nf-scheduling-draining"' in page
    assert "hosts/placement.css" in page


def test_list_filters_by_region_and_scheduling():
    fleet()
    client = client_for(staff())

    def listed(query):
        return sorted(host.name for host in client.get(reverse(HOSTS) + query).context["cl"].result_list)

    assert listed("?region=eu-1") == ["man-1", "over-1"]
    assert listed("?region=(none)") == ["old-1"]
    assert listed("?scheduling=draining") == ["old-1"]
    assert listed("?scheduling=automatic&region=eu-1") == ["over-1"]
    filters = client.get(reverse(HOSTS)).content.decode()
    assert "?region=us-1" in filters and "?scheduling=manual" in filters


def test_host_page_shows_allocatable_and_every_field_of_the_capacity_model():
    host = fleet()
    client = client_for(staff("hosts.change_host"))
    response = client.get(reverse("admin:hosts_host_change", args=[host.pk]))
    form = response.context["adminform"].form
    assert set(form.fields) == {
        "name",
        "cpu_cores",
        "memory_bytes",
        "disk_bytes",
        "reserved_cpu_cores",
        "reserved_memory_bytes",
        "reserved_disk_bytes",
        "cpu_allocation_ratio",
        "memory_allocation_ratio",
        "disk_allocation_ratio",
        "max_nodes",
        "region",
        "scheduling",
    }
    page = response.content.decode()
    assert "<td>CPU</td><td><strong>72 cores</strong></td><td>64 cores</td><td>16 cores</td><td>1.5</td>" in page
    assert "Node slots: 4 (3 free)" in page


def host_post(host: Host, **changes) -> dict:
    values = {
        "name": host.name,
        "cpu_cores": host.cpu_cores,
        "memory_bytes": host.memory_bytes,
        "disk_bytes": host.disk_bytes,
        "reserved_cpu_cores": host.reserved_cpu_cores,
        "reserved_memory_bytes": host.reserved_memory_bytes,
        "reserved_disk_bytes": host.reserved_disk_bytes,
        "cpu_allocation_ratio": host.cpu_allocation_ratio,
        "memory_allocation_ratio": host.memory_allocation_ratio,
        "disk_allocation_ratio": host.disk_allocation_ratio,
        "max_nodes": "" if host.max_nodes is None else host.max_nodes,
        "region": host.region,
        "scheduling": host.scheduling,
        **changes,
    }
    return {name: str(value) for name, value in values.items()}


def test_a_change_that_leaves_the_host_over_allocated_saves_and_warns_naming_each_resource(caplog):
    host = fleet()
    client = client_for(staff("hosts.change_host"))
    url = reverse("admin:hosts_host_change", args=[host.pk])
    with caplog.at_level(logging.WARNING, logger="hosts.services"):
        response = client.post(url, host_post(host, cpu_allocation_ratio="0.1", memory_bytes=4 * GiB, max_nodes=0))
    assert response.status_code == 302
    host.refresh_from_db()
    assert (host.allocatable_cpu_cores, host.memory_bytes, host.max_nodes) == (4, 4 * GiB, 0)
    assert (
        messages.WARNING,
        (
            "over-1 is now over-allocated: CPU 8 cores used of 4 cores allocatable; memory 8.0 GiB used of 4.0 GiB "
            "allocatable; node slots 1 used of 0. Its nodes stay; no node that needs more of that fits until some "
            "are deleted."
        ),
    ) in levels(response)
    assert any("host_over_allocated" in record.getMessage() for record in caplog.records)


def test_a_change_within_allocatable_warns_of_nothing_and_empty_boxes_mean_the_defaults():
    host = fleet()
    client = client_for(staff("hosts.change_host"))
    url = reverse("admin:hosts_host_change", args=[host.pk])
    response = client.post(
        url, host_post(host, reserved_cpu_cores="", cpu_allocation_ratio="", max_nodes="", region="eu-2")
    )
    assert response.status_code == 302
    host.refresh_from_db()
    assert (host.reserved_cpu_cores, host.cpu_allocation_ratio, host.max_nodes, host.region) == (
        0,
        Decimal(1),
        None,
        "eu-2",
    )
    assert host.node_count == 1 and host.node_cpu_cores == 8  # counters untouched
    assert all(level != messages.WARNING for level, _text in levels(response))


def test_adding_a_host_goes_through_host_create_with_the_capacity_model():
    client = client_for(staff("hosts.add_host", "hosts.change_host"))
    response = client.post(
        reverse("admin:hosts_host_add"),
        {
            "name": "new-1",
            "cpu_cores": "32",
            "memory_bytes": str(128 * GiB),
            "disk_bytes": str(4 * TiB),
            "reserved_memory_bytes": str(8 * GiB),
            "memory_allocation_ratio": "1.25",
            "max_nodes": "10",
            "region": "eu-1",
            "scheduling": "manual",
        },
    )
    assert response.status_code == 302
    host = Host.objects.get(name="new-1")
    assert host.allocatable() == {"cpu_cores": 32, "memory_bytes": 150 * GiB, "disk_bytes": 4 * TiB}
    assert (host.max_nodes, host.region, host.scheduling, host.node_count) == (10, "eu-1", "manual", 0)


def test_ratios_out_of_range_or_with_more_than_four_places_are_refused_by_the_form():
    host = fleet()
    client = client_for(staff("hosts.change_host"))
    url = reverse("admin:hosts_host_change", args=[host.pk])
    for ratio in ("0", "1000.5", "1.23456"):
        response = client.post(url, host_post(host, cpu_allocation_ratio=ratio))
        assert response.status_code == 200, ratio
        assert "cpu_allocation_ratio" in response.context["adminform"].form.errors
    host.refresh_from_db()
    assert host.cpu_allocation_ratio == Decimal("1.5")


def test_scheduling_actions_need_the_change_permission():
    fleet()
    assert not {"drain", "set_automatic", "set_manual"} & action_names(client_for(staff()).get(reverse(HOSTS)))
    offered = action_names(client_for(staff("hosts.change_host")).get(reverse(HOSTS)))
    assert {"drain", "set_automatic", "set_manual"} <= offered
    ids = Host.objects.values_list("pk", flat=True)
    post_action(client_for(staff()), HOSTS, "drain", ids)
    assert Host.objects.filter(scheduling="draining").count() == 1


def test_drain_set_automatic_and_set_manual_report_each_outcome_and_log_the_change():
    fleet()
    user = staff("hosts.change_host")
    ids = {host.name: host.pk for host in Host.objects.all()}

    def run(action, names):  # a client each: messages shown once, not carried to the next answer
        return post_action(client_for(user), HOSTS, action, [ids[name] for name in names])

    drained = run("drain", ["over-1", "old-1"])
    assert levels(drained) == [
        (messages.SUCCESS, "Draining now (no new node goes on them; their nodes stay): over-1."),
        (messages.INFO, "Already draining: old-1."),
    ]
    automatic = run("set_automatic", ["over-1", "old-1", "man-1"])
    assert levels(automatic) == [
        (messages.SUCCESS, "Automatic now (placement may choose them): man-1, old-1, over-1."),
    ]
    manual = run("set_manual", ["plain-1"])
    assert levels(manual) == [(messages.SUCCESS, "Manual now (only nodes that name them go on them): plain-1.")]
    assert dict(Host.objects.values_list("name", "scheduling")) == {
        "over-1": "automatic",
        "plain-1": "manual",
        "old-1": "automatic",
        "man-1": "automatic",
    }
    history = client_for(user).get(reverse("admin:hosts_host_history", args=[ids["plain-1"]])).content.decode()
    assert "Scheduling set to manual." in history
