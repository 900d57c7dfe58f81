"""What a support person reads in their first hour (issue 20): the words and dates of the admin,
pages that refresh while work is in flight (and only then), a rollout's link to its nodes, and
the usage columns sorted by how full a host is."""

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from nodes.changes import node_upgrade
from nodes.models import Command
from nodes.rollouts.models import RolloutState
from nodes.rollouts.plan import Selection
from nodes.rollouts.services import rollout_create
from tests.admin.conftest import client_for, staff
from tests.factories import GiB, HostFactory, ImageFactory, TiB, UserFactory, place_node
from tests.nodes.rollouts.support import answer, work

pytestmark = pytest.mark.django_db

ROLLOUT_VIEW = ["nodes.view_rollout", "nodes.change_rollout"]
#: One format, with its zone, on every page (config/formats).
STAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\xa0UTC")
REFRESH = 'src="/static/nodefleet/refresh.js"'


def node_page(client, node) -> str:
    return client.get(reverse("admin:nodes_node_change", args=[node.pk])).content.decode()


def fleet(nodes: int = 3):
    old = ImageFactory(protocol="ethereum", version="1.14.0")
    new = ImageFactory(protocol="ethereum", version="1.15.0")
    host = HostFactory(name="host-00001", cpu_cores=64, memory_bytes=256 * GiB, disk_bytes=8 * TiB)
    return host, old, new, [place_node(host=host, image=old, name=f"eth-{n}") for n in range(nodes)]


def paused_after_canary(creator=None):
    _host, _old, new, nodes = fleet()
    rollout = rollout_create(selection=Selection(image=new, canary=1, batch_size=2), start=True, actor=creator)
    work()
    answer("succeeded")
    work()
    rollout.refresh_from_db()
    assert rollout.state == RolloutState.PAUSED and rollout.reason == "paused after the canary batch"
    return rollout, nodes


def test_a_node_upgrading_refreshes_until_its_agent_reports_and_dates_carry_their_zone():
    _host, _old, new, [node, *_] = fleet(1)
    client = client_for(staff("nodes.cancel_command"))
    assert REFRESH not in node_page(client, node)  # running: nothing in flight, no script

    node_upgrade(node_id=node.pk, image_id=new.pk)
    page = node_page(client, node)

    assert REFRESH in page and 'id="nf-refresh"' in page
    assert "Cancel the pending upgrade…" in page
    history = page[page.index('class="nf-history"') :]
    assert STAMP.search(history), history[:400]
    answer("succeeded")
    assert REFRESH not in node_page(client, node)


def test_the_commands_list_refreshes_only_while_it_shows_an_open_command():
    _host, _old, new, [node, *_] = fleet(1)
    client = client_for(staff())
    commands = reverse("admin:nodes_command_changelist")
    assert REFRESH not in client.get(commands).content.decode()  # the nodes' creations are closed
    node_upgrade(node_id=node.pk, image_id=new.pk)
    assert REFRESH in client.get(commands).content.decode()
    assert REFRESH not in client.get(commands + "?status__exact=succeeded").content.decode()


def test_a_rollout_paused_after_its_canary_reads_as_a_notice_with_its_state_as_a_badge_and_links_its_nodes():
    creator = UserFactory(username="support-engineer-on-call")
    rollout, nodes = paused_after_canary(creator)
    client = client_for(staff(*ROLLOUT_VIEW))

    page = client.get(reverse("admin:nodes_rollout_change", args=[rollout.pk])).content.decode()
    assert 'class="nf-reason-box nf-reason-notice" id="rollout-reason"' in page
    assert REFRESH not in page  # paused, no node upgrading
    assert STAMP.search(page)
    link = re.search(r'<a href="([^"]+)" id="rollout-nodes">', page).group(1)
    listed = client.get(link.replace("&amp;", "&")).context["cl"].result_list
    assert sorted(node.name for node in listed) == sorted(node.name for node in nodes)

    listing = client.get(reverse("admin:nodes_rollout_changelist")).content.decode()
    assert '<span class="nf-badge nf-state nf-state-paused">Paused</span>' in listing
    assert STAMP.search(listing) and "support-engineer-on-call" in listing
    assert REFRESH not in listing


def test_a_running_rollout_refreshes_and_a_halt_reads_as_an_error():
    _host, _old, new, _nodes = fleet()
    rollout = rollout_create(selection=Selection(image=new, canary=1, batch_size=2), start=True)
    client = client_for(staff(*ROLLOUT_VIEW))
    work()  # the canary is upgrading
    assert REFRESH in client.get(reverse("admin:nodes_rollout_change", args=[rollout.pk])).content.decode()
    assert REFRESH in client.get(reverse("admin:nodes_rollout_changelist")).content.decode()
    answer("failed")
    work()
    rollout.refresh_from_db()
    assert rollout.state == RolloutState.HALTED
    page = client.get(reverse("admin:nodes_rollout_change", args=[rollout.pk])).content.decode()
    assert "nf-reason-box nf-reason-error" in page and REFRESH not in page


def test_the_usage_columns_sort_by_how_full_the_host_is():
    # cores used: roomy 16 of 64 (25 %), busy 6 of 8 (75 %), middle 12 of 32 (37.5 %)
    image = ImageFactory(protocol="ethereum", min_cpu_cores=2, min_memory_bytes=GiB, min_disk_bytes=GiB)
    for name, cores, nodes in (("roomy", 64, 8), ("busy", 8, 3), ("middle", 32, 6)):
        host = HostFactory(name=name, cpu_cores=cores, memory_bytes=1024 * GiB, disk_bytes=100 * TiB)
        for n in range(nodes):
            place_node(host=host, image=image, name=f"{name}-{n}")
    client = client_for(staff())
    hosts = reverse("admin:hosts_host_changelist")
    columns = client.get(hosts).context["cl"].list_display
    for column in ("cpu", "memory", "disk"):
        index = columns.index(column)
        ascending = [h.name for h in client.get(f"{hosts}?o={index}").context["cl"].result_list]
        descending = [h.name for h in client.get(f"{hosts}?o=-{index}").context["cl"].result_list]
        if column == "cpu":
            assert ascending == ["roomy", "middle", "busy"]  # by cores used it was busy, middle, roomy
        assert descending == ascending[::-1]


def test_an_agent_seen_a_moment_ago_reads_just_now_with_the_time_on_hover():
    HostFactory(name="host-00001", agent_token_digest="a" * 64, agent_seen_at=timezone.now() - dt.timedelta(seconds=5))
    page = client_for(staff()).get(reverse("admin:hosts_host_changelist")).content.decode()
    assert "seen just now" in page and "0\xa0minutes" not in page
    assert re.search(r'title="\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\xa0UTC">seen just now', page)


def test_a_command_acked_by_its_agent_is_cancelled_as_in_progress():
    _host, _old, new, [node, *_] = fleet(1)
    node_upgrade(node_id=node.pk, image_id=new.pk)
    Command.objects.filter(node_id=node.pk, status="pending").update(status="acked", acked_at=timezone.now())
    assert "Cancel the upgrade in progress…" in node_page(client_for(staff("nodes.cancel_command")), node)
