"""Every list page of the admin runs a fixed number of queries, whatever the number of rows:
measured on a small fleet, then on one several times bigger (with history and repairs)."""

import pytest
from django.urls import reverse

from hosts.repair import host_counters_repair
from tests.admin.conftest import client_for, staff
from tests.factories import HostFactory, ImageFactory, ImagePropertyFactory, place_node
from tests.hosts.drift import set_counter

pytestmark = pytest.mark.django_db

LISTS = [
    "admin:hosts_host_changelist",
    "admin:hosts_counterrepair_changelist",
    "admin:nodes_node_changelist",
    "admin:nodes_image_changelist",
    "admin:nodes_nodelog_changelist",
    "admin:nodes_command_changelist",
]


def grow(hosts: int, nodes_per_host: int):
    """More hosts, images (with properties), nodes (with their log and commands) and repairs."""
    image = ImageFactory()
    ImagePropertyFactory(image=image)
    for _ in range(hosts):
        host = HostFactory()
        for _ in range(nodes_per_host):
            place_node(host=host, image=image)
        set_counter(host, "node_count", 1)
    host_counters_repair()


@pytest.mark.parametrize("changelist", LISTS)
def test_list_page_queries_do_not_grow_with_rows(changelist, django_assert_max_num_queries):
    client = client_for(staff())
    grow(1, 1)
    with django_assert_max_num_queries(12) as small:
        assert client.get(reverse(changelist)).status_code == 200
    for _ in range(4):
        grow(5, 3)
    with django_assert_max_num_queries(len(small)) as big:
        response = client.get(reverse(changelist))
    assert len(response.context["cl"].result_list) >= 5  # images: one per growth; the rest: 20 or more
    assert len(big) == len(small)
