"""The admin home opens on the fleet (§12): what it shows of a hand-built fleet, to whom, that
every number links to a list that counts as many rows, and a fixed number of statements."""

import re
from html import unescape

import pytest
from django.urls import reverse

from hosts.models import Host
from nodes.models import Command, Node
from nodes.rollouts.models import Rollout
from tests.admin.conftest import client_for, staff
from tests.factories import HostFactory, ImageFactory, UserFactory, place_node
from tests.nodes.fleet_fixture import build_fleet

pytestmark = pytest.mark.django_db(transaction=True)

EVERYTHING = ["nodes.view_rollout", "nodes.view_image"]


def home(client):
    response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    return response.content.decode()


def link_of(page: str, element_id: str) -> tuple[str, int]:
    """(href, number) of the count link with this id."""
    match = re.search(rf'<a class="nf-count[^"]*" id="{element_id}" href="([^"]+)"><b>(-?\d+)</b>', page) or re.search(
        rf'<a href="([^"]+)" class="nf-count[^"]*" id="{element_id}"><b>(-?\d+)</b>', page
    )
    assert match, element_id
    return unescape(match.group(1)), int(match.group(2))


def rows_of(client, url: str) -> int:
    """How many rows the admin list at `url` says it shows (its result count)."""
    response = client.get(url)
    assert response.status_code == 200, url
    changelist = response.context["cl"]
    return changelist.result_count


def test_the_home_shows_the_fleet_and_every_number_links_to_a_list_of_that_many_rows():
    build_fleet()
    client = client_for(staff(*EVERYTHING))

    page = home(client)

    assert 'id="nf-capacity"' in page and 'id="nf-inflight"' in page and 'id="nf-outcomes"' in page
    assert re.search(r"<b id=\"nf-audit-age\">5\xa0minutes ago</b>", page)  # the last audit's age
    for element_id in (
        "nf-nodes-creating",
        "nf-nodes-upgrading",
        "nf-nodes-failed",
        "nf-commands-pending",
        "nf-commands-acked",
        "nf-commands-overdue",
        "nf-inflight-offline",
        "nf-rollouts-running",
        "nf-rollouts-paused",
        "nf-rollouts-halted",
        "nf-hosts-offline",
        "nf-hosts-over",
        "nf-hosts-draining",
        "nf-hosts-manual",
        "nf-hosts-automatic",
        "nf-hosts-drifted",
    ):
        url, number = link_of(page, element_id)
        assert rows_of(client, url) == number, (element_id, url)
    # running comes from the counters: Σ node_count minus the few states, as the list counts it.
    url, running = link_of(page, "nf-nodes-running")
    assert running == Node.objects.filter(state="running").count() == rows_of(client, url) == 6


def test_each_tile_links_to_its_host_with_its_numbers_as_text():
    fleet = build_fleet()
    page = home(client_for(staff(*EVERYTHING)))

    tiles = re.findall(r'<a class="nf-tile ([^"]*)" href="([^"]+)" title="([^"]+)" data-host="([^"]+)"', page)
    assert {name for *_, name in tiles} == set(fleet.hosts)
    for _classes, href, title, name in tiles:
        assert href == reverse("admin:hosts_host_change", args=[fleet.hosts[name].pk])
        assert "CPU" in unescape(title) and "nodes" in unescape(title)
    classes = {name: css for css, _, _, name in tiles}
    assert "nf-is-draining" in classes["eu-a2"] and "nf-is-over-allocated" in classes["eu-a2"]
    assert "nf-is-offline" in classes["us-b1"] and "nf-is-manual" in classes["us-b1"]
    assert "nf-is-drifted" in classes["zz-c1"] and "nf-tile-d7" in classes["zz-c1"]


def test_panels_show_only_to_users_who_may_view_what_they_count():
    build_fleet()

    hosts_only = home(client_for(UserFactory(is_staff=True, permissions=["hosts.view_host"])))
    assert 'id="nf-capacity"' in hosts_only and 'id="nf-hosts"' in hosts_only and 'id="nf-drift"' in hosts_only
    for panel in ("nf-nodes-", "nf-commands-", "nf-rollouts-", 'id="nf-outcomes"', 'id="nf-headroom"'):
        assert panel not in hosts_only
    nothing = home(client_for(UserFactory(is_staff=True, permissions=["nodes.view_node"])))
    assert 'id="nf-fleet"' not in nothing and "nf-fleet-home" not in nothing


def grow(count: int, start: int):
    image = ImageFactory(protocol="ethereum", version=f"3.{start}.0")
    for n in range(start, start + count):
        place_node(host=HostFactory(name=f"g-{n:03d}", region=f"r{n % 4}"), image=image, name=f"g-node-{n:03d}")


def test_the_home_costs_the_same_statements_for_3_and_30_hosts(django_assert_num_queries, queries):
    client = client_for(staff(*EVERYTHING))
    grow(3, 0)
    Rollout.objects.create(image=ImageFactory(protocol="ethereum"), state="running")
    home(client)  # warm: the session, the permission caches
    with queries() as small:
        home(client)
    grow(27, 3)
    Command.objects.update()  # nothing: commands stay as they are

    with queries() as large:
        page = home(client)

    assert len(large) == len(small), "\n".join(large)
    assert page.count('class="nf-tile ') == Host.objects.count() == 30
