"""The admin's side of the host agents (SPEC §9): node state badges, the "overdue" filter, a
node's timeline of commands, "Revert to <image>" on a failed node, cancelling commands, and the
hosts' agent presence."""

import hashlib
import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from hosts.models import Host
from nodes.models import Command, CommandKind, CommandStatus, Node, NodeState
from tests.admin.conftest import action_names, client_for, messages_of, post_action, staff
from tests.factories import HostFactory, ImageFactory, place_node

pytestmark = pytest.mark.django_db

NODES = "admin:nodes_node_changelist"
COMMANDS = "admin:nodes_command_changelist"
HOSTS = "admin:hosts_host_changelist"


def settle(node, **fields) -> Node:
    """Closes the node's open commands (as an agent's success would) and sets `fields` on it."""
    Command.objects.filter(node_id=node.pk).update(status=CommandStatus.SUCCEEDED, finished_at=timezone.now())
    Node.objects.filter(pk=node.pk).update(**fields)
    return Node.objects.get(pk=node.pk)


def failed_upgrade(node, *, from_image, to_image, message="the new image did not start") -> Command:
    """The node's upgrade from `from_image` to `to_image` that its agent reported failed."""
    settle(node, image=to_image, state=NodeState.FAILED)
    now = timezone.now()
    return Command.objects.create(
        host=node.host,
        node_id=node.pk,
        kind=CommandKind.NODE_UPGRADE,
        payload={"from": {"image_id": str(from_image.pk)}, "to": {"image_id": str(to_image.pk)}},
        status=CommandStatus.FAILED,
        acked_at=now,
        finished_at=now,
        message=message,
    )


def test_node_list_shows_each_state_as_a_badge():
    image = ImageFactory()
    host = HostFactory()
    for state in NodeState:
        settle(place_node(host=host, image=image, name=f"n-{state}"), state=state)

    page = client_for(staff()).get(reverse(NODES)).content.decode()

    for state in NodeState:
        assert f'nf-state-{state.value}" title="">{state.label}</span>' in page


def test_overdue_filter_lists_nodes_whose_command_is_past_its_timeout(settings):
    settings.AGENT_ACK_TIMEOUT = 600
    image, host = ImageFactory(), HostFactory()
    late = place_node(host=host, image=image, name="late", running=False)
    fresh = place_node(host=host, image=image, name="fresh", running=False)
    Command.objects.filter(node_id=late.pk).update(created_at=timezone.now() - timedelta(hours=1))
    client = client_for(staff())

    nodes = client.get(reverse(NODES) + "?overdue=yes").context["cl"].result_list
    commands = client.get(reverse(COMMANDS) + "?overdue=yes").context["cl"].result_list

    assert [node.name for node in nodes] == ["late"]
    assert [command.node_id for command in commands] == [late.pk]
    assert fresh.pk not in {command.node_id for command in commands}


def test_node_page_shows_the_timeline_of_its_commands_with_the_agents_message():
    old, new = ImageFactory(version="1.0"), ImageFactory(version="2.0")
    node = place_node(host=HostFactory(), image=old, name="eth-1")
    command = failed_upgrade(node, from_image=old, to_image=new, message="disk full on /var/lib")

    page = client_for(staff()).get(reverse("admin:nodes_node_change", args=[node.pk])).content.decode()

    assert "Agent commands" in page
    assert "Upgrade node ethereum@1.0 → ethereum@2.0" in page
    assert "disk full on /var/lib" in page
    # One format with its zone (config/formats), as on every admin page; TIME_ZONE is UTC.
    created, acked = (f"{moment:%Y-%m-%d %H:%M:%S}\u00a0UTC" for moment in (command.created_at, command.acked_at))
    assert (
        f'<span class="nf-nowrap">created {created}</span> → <span class="nf-nowrap">acked {acked}</span> → '
        '<span class="nf-nowrap"><span class="nf-badge nf-state nf-state-failed"'
    ) in page
    assert "Create node" in page  # the node's first command, closed by its agent


def test_failed_node_page_offers_revert_to_the_previous_image_through_the_upgrade_plan():
    old, new = ImageFactory(version="1.0"), ImageFactory(version="2.0")
    node = place_node(host=HostFactory(), image=old, name="eth-1")
    failed_upgrade(node, from_image=old, to_image=new)
    upgrader = client_for(staff("nodes.upgrade_node", "nodes.delete_node"))

    page = upgrader.get(reverse("admin:nodes_node_change", args=[node.pk])).content.decode()
    plan = post_action(upgrader, NODES, "upgrade_selected", [node.pk], image=str(old.pk), step="plan")

    assert "Revert to ethereum@1.0…" in page
    assert 'id="revert-this-node"' in page and f'name="image" value="{old.pk}"' in page
    assert reverse("admin:nodes_node_delete", args=[node.pk]) in page  # and delete
    assert plan.status_code == 200 and plan.context["image"] == old
    assert [row["node"].pk for row in plan.context["rows"]] == [node.pk]


def test_revert_is_offered_only_for_a_failed_upgrade_and_to_users_who_may_upgrade():
    old, new = ImageFactory(version="1.0"), ImageFactory(version="2.0")
    node = place_node(host=HostFactory(), image=old)
    failed_upgrade(node, from_image=old, to_image=new)
    created_failed = settle(place_node(host=HostFactory(), image=old), state=NodeState.FAILED)
    upgrader = client_for(staff("nodes.upgrade_node"))

    def page(client, target):
        return client.get(reverse("admin:nodes_node_change", args=[target.pk])).content.decode()

    assert "Revert to" not in page(client_for(staff()), node)
    assert "Revert to" not in page(upgrader, created_failed)  # failed to create: nothing to revert to
    settle(node, state=NodeState.RUNNING)
    assert "Revert to" not in page(upgrader, node)


def test_cancel_is_offered_only_with_the_cancel_permission_and_confirms_first():
    node = place_node(host=HostFactory(), image=ImageFactory(), name="eth-9", running=False)
    command = Command.objects.get(node_id=node.pk)
    viewer, canceller = client_for(staff()), client_for(staff("nodes.cancel_command"))

    assert "cancel_selected" not in action_names(viewer.get(reverse(COMMANDS)))
    assert "cancel_selected" in action_names(canceller.get(reverse(COMMANDS)))
    assert (
        "Cancel the pending creation…"
        in canceller.get(reverse("admin:nodes_node_change", args=[node.pk])).content.decode()
    )
    confirm = post_action(canceller, COMMANDS, "cancel_selected", [command.pk])

    assert confirm.status_code == 200
    assert "the node becomes failed (delete it afterwards)" in confirm.content.decode()
    assert Command.objects.get(pk=command.pk).status == CommandStatus.PENDING  # nothing written yet


def test_hosts_show_when_their_agent_was_last_seen_and_offline_past_the_limit(settings):
    settings.AGENT_OFFLINE_AFTER = 300
    now = timezone.now()
    HostFactory(name="seen", agent_token_digest="a" * 64, agent_seen_at=now - timedelta(seconds=90))
    HostFactory(name="gone", agent_token_digest="b" * 64, agent_seen_at=now - timedelta(hours=2))
    HostFactory(name="bare")
    client = client_for(staff())

    page = client.get(reverse(HOSTS)).content.decode()
    offline = client.get(reverse(HOSTS) + "?agent=offline").context["cl"].result_list

    assert "seen 1\xa0minute ago" in page
    assert "nf-state-offline" in page and "seen 2\xa0hours ago" in page
    assert "no token" in page
    assert [host.name for host in offline] == ["gone"]
    host_page = client.get(reverse("admin:hosts_host_change", args=[Host.objects.get(name="gone").pk]))
    assert "offline" in host_page.content.decode()


def test_confirming_a_cancel_goes_through_command_cancel_and_sums_up():
    node = place_node(host=HostFactory(), image=ImageFactory(), name="eth-9", running=False)
    command = Command.objects.get(node_id=node.pk)
    canceller = client_for(staff("nodes.cancel_command"))

    response = post_action(canceller, COMMANDS, "cancel_selected", [command.pk], step="apply")
    again = post_action(canceller, COMMANDS, "cancel_selected", [command.pk], step="apply")

    assert response.status_code == 302
    assert Command.objects.get(pk=command.pk).status == CommandStatus.CANCELLED
    assert Node.objects.get(pk=node.pk).state == NodeState.FAILED  # a pending create: support deletes it
    assert messages_of(response) == ["1 command cancelled."]
    assert messages_of(again)[-1].startswith(f"0 commands cancelled, 1 not: command {command.pk}: ")


def test_issue_agent_token_confirms_then_shows_each_token_once_and_stores_its_digest():
    host = HostFactory(name="h-token")
    changer, viewer = client_for(staff("hosts.change_host")), client_for(staff())

    assert "issue_agent_token" not in action_names(viewer.get(reverse(HOSTS)))
    confirm = post_action(changer, HOSTS, "issue_agent_token", [host.pk])
    assert confirm.status_code == 200 and "Nothing has changed yet" in confirm.content.decode()
    assert Host.objects.get(pk=host.pk).agent_token_digest is None

    shown = post_action(changer, HOSTS, "issue_agent_token", [host.pk], step="apply")

    ((issued_host, token),) = shown.context["issued"]
    digest = Host.objects.get(pk=host.pk).agent_token_digest
    assert issued_host.pk == host.pk and token in shown.content.decode()
    assert digest == hashlib.sha256(token.encode()).hexdigest()
    assert "no-store" in shown["Cache-Control"]
    again = post_action(changer, HOSTS, "issue_agent_token", [host.pk], step="apply")
    assert Host.objects.get(pk=host.pk).agent_token_digest != digest  # the first token is revoked
    assert "already has a token" in post_action(changer, HOSTS, "issue_agent_token", [host.pk]).content.decode()
    assert again.status_code == 200


def test_fleet_health_links_to_overdue_commands_and_offline_agents():
    page = client_for(staff()).get(reverse("admin:index")).content.decode()

    assert f'href="{reverse(COMMANDS)}?overdue=yes">Overdue agent commands</a>' in page
    assert f'href="{reverse(HOSTS)}?agent=offline">Offline agents</a>' in page


@pytest.mark.parametrize(
    ("changelist", "query"),
    [
        (NODES, "?overdue=yes"),
        (COMMANDS, "?overdue=yes"),
        (COMMANDS, "?status__exact=pending"),
        (HOSTS, "?agent=offline"),
    ],
)
def test_agent_filters_run_the_same_queries_whatever_the_number_of_rows(
    changelist, query, settings, django_assert_max_num_queries
):
    settings.AGENT_ACK_TIMEOUT = 0
    client = client_for(staff())
    image = ImageFactory()

    def grow(count):
        for _ in range(count):
            host = HostFactory(agent_token_digest=uuid.uuid4().hex * 2)
            place_node(host=host, image=image, running=False)

    grow(1)
    with django_assert_max_num_queries(15) as small:
        assert client.get(reverse(changelist) + query).status_code == 200
    grow(8)
    with django_assert_max_num_queries(len(small)):
        response = client.get(reverse(changelist) + query)
    assert len(response.context["cl"].result_list) == 9
