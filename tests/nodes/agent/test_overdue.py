"""Overdue agent commands (SPEC §9): pending past AGENT_ACK_TIMEOUT, acked past
AGENT_RESULT_TIMEOUT. audit_resources lists them as warnings (exit code unchanged), /metrics
counts them, and hosts whose agent was not seen for AGENT_OFFLINE_AFTER count as offline."""

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from hosts.presence import NO_AGENT, OFFLINE, ONLINE, agent_presence, offline_host_count
from nodes.agent.overdue import overdue_commands, overdue_counts
from nodes.models import Command, CommandStatus
from tests.factories import HostFactory, ImageFactory, place_node
from tests.nodes.test_audit_commands import run

pytestmark = pytest.mark.django_db


def open_command(host, *, status=CommandStatus.PENDING, age=0, acked_age=None, not_before_age=None):
    """A node placed on `host` whose node_create command is `status`, created `age` seconds ago."""
    node = place_node(host=host, image=ImageFactory(), running=False)
    now = timezone.now()
    command = Command.objects.get(node_id=node.pk)
    Command.objects.filter(pk=command.pk).update(
        status=status,
        created_at=now - timedelta(seconds=age),
        acked_at=None if acked_age is None else now - timedelta(seconds=acked_age),
        not_before=None if not_before_age is None else now - timedelta(seconds=not_before_age),
    )
    return Command.objects.get(pk=command.pk)


def test_pending_past_the_ack_timeout_and_acked_past_the_result_timeout_are_overdue(settings):
    settings.AGENT_ACK_TIMEOUT, settings.AGENT_RESULT_TIMEOUT = 600, 7200
    host = HostFactory()
    late_pending = open_command(host, age=601)
    open_command(host, age=599)  # within its time
    late_acked = open_command(host, status=CommandStatus.ACKED, age=9000, acked_age=7201)
    open_command(host, status=CommandStatus.ACKED, age=9000, acked_age=7000)  # acked in time
    # retry_later: the wait restarts at not_before, however old the command is
    open_command(host, age=5000, not_before_age=100)
    late_retry = open_command(host, age=5000, not_before_age=700)
    closed = open_command(host, age=99999)
    Command.objects.filter(pk=closed.pk).update(status=CommandStatus.FAILED)

    overdue = {command.pk: command.waiting_since for command in overdue_commands()}

    assert set(overdue) == {late_pending.pk, late_acked.pk, late_retry.pk}
    assert overdue[late_acked.pk] == Command.objects.get(pk=late_acked.pk).acked_at
    assert overdue[late_retry.pk] == Command.objects.get(pk=late_retry.pk).not_before
    assert overdue_counts() == {"pending": 2, "acked": 1}


def test_audit_lists_overdue_commands_as_warnings_and_still_exits_0(settings):
    settings.AGENT_ACK_TIMEOUT = 600
    host = HostFactory(name="h-late")
    command = open_command(host, age=3600)

    code, out = run("audit_resources")
    json_code, json_out = run("audit_resources", "--json")

    assert (code, json_code) == (0, 0)
    assert out.splitlines() == [
        f"warning: command {command.pk} (node_create) of node {command.node_id} on host h-late is overdue: "
        f"pending since {command.created_at.isoformat()} (ack timeout 600 s)",
        "Checked 1 host(s) and 1 node(s): no findings, 1 overdue command(s).",
    ]
    document = json.loads(json_out)
    assert document["warnings"] == [
        {
            "kind": "overdue_command",
            "command_id": command.pk,
            "command_kind": "node_create",
            "node_id": str(command.node_id),
            "host_id": str(host.pk),
            "host": "h-late",
            "status": "pending",
            "since": command.created_at.isoformat(),
            "timeout_seconds": 600,
        }
    ]
    assert document["summary"]["warnings"] == document["summary"]["overdue_commands"] == 1


def test_audit_of_some_hosts_lists_only_their_overdue_commands():
    late, other = HostFactory(name="late"), HostFactory(name="other")
    open_command(late, age=99999)
    open_command(other, age=99999)

    code, out = run("audit_resources", "--host", "other")

    assert code == 0
    assert [line for line in out.splitlines() if "overdue" in line and "on host" in line] == [
        line for line in out.splitlines() if "on host other" in line
    ]
    assert out.splitlines()[-1].endswith("1 overdue command(s).")


def test_audit_query_count_does_not_grow_with_overdue_commands(django_assert_max_num_queries):
    host = HostFactory()
    open_command(host, age=99999)
    with django_assert_max_num_queries(20) as few:
        run("audit_resources", "--json")
    for _ in range(10):
        open_command(host, age=99999)
    with django_assert_max_num_queries(len(few)):
        _code, out = run("audit_resources", "--json")
    assert json.loads(out)["summary"]["overdue_commands"] == 11


def test_agent_presence_online_offline_and_no_agent(settings):
    settings.AGENT_OFFLINE_AFTER = 300
    now = timezone.now()
    never = HostFactory(agent_token_digest="a" * 64)
    seen = HostFactory(agent_token_digest="b" * 64, agent_seen_at=now - timedelta(seconds=60))
    gone = HostFactory(agent_token_digest="c" * 64, agent_seen_at=now - timedelta(seconds=301))
    no_token = HostFactory(agent_seen_at=now - timedelta(days=9))

    assert [agent_presence(host, now=now) for host in (never, seen, gone, no_token)] == [
        OFFLINE,
        ONLINE,
        OFFLINE,
        NO_AGENT,
    ]
    assert offline_host_count(now=now) == 2


def test_metrics_gauge_overdue_commands_and_offline_hosts(settings):
    settings.METRICS_TOKEN = "metrics-test-token"
    host = HostFactory(agent_token_digest="d" * 64)
    open_command(host, age=99999)
    open_command(host, status=CommandStatus.ACKED, age=99999, acked_age=99999)
    open_command(host, status=CommandStatus.ACKED, age=99999, acked_age=99999)

    body = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer metrics-test-token").content.decode()

    assert 'nodefleet_agent_commands_overdue{status="pending"} 1.0' in body
    assert 'nodefleet_agent_commands_overdue{status="acked"} 2.0' in body
    assert "nodefleet_agent_hosts_offline 1.0" in body
