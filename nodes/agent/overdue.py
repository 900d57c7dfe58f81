"""Selectors for what agents leave undone (SPEC §9): overdue commands (offline hosts: hosts.presence).

A command is overdue when it stayed `pending` longer than AGENT_ACK_TIMEOUT since it was created
(or since its `not_before`, after a retry_later), or `acked` longer than AGENT_RESULT_TIMEOUT
since it was acked. Nothing changes by itself: audit_resources warns, /metrics counts, the admin
filters. One definition (overdue_condition) serves all three, on the poll's partial index of
open commands."""

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Case, Count, DateTimeField, F, Q, When
from django.db.models.functions import Coalesce
from django.utils import timezone
from prometheus_client import Gauge

from hosts.presence import offline_host_count
from nodes.models import Command, CommandStatus

AGENT_COMMANDS_OVERDUE = Gauge(
    "nodefleet_agent_commands_overdue",
    "Open agent commands past their timeout: pending past AGENT_ACK_TIMEOUT, acked past AGENT_RESULT_TIMEOUT.",
    ["status"],
    multiprocess_mode="mostrecent",
)
AGENT_HOSTS_OFFLINE = Gauge(
    "nodefleet_agent_hosts_offline",
    "Hosts with an agent token whose agent was not seen for AGENT_OFFLINE_AFTER seconds.",
    multiprocess_mode="mostrecent",
)


def ack_timeout() -> timedelta:
    return timedelta(seconds=settings.AGENT_ACK_TIMEOUT)


def result_timeout() -> timedelta:
    return timedelta(seconds=settings.AGENT_RESULT_TIMEOUT)


#: Since when an open command waits: a pending one for its ack, an acked one for its result.
WAITING_SINCE = Case(
    When(status=CommandStatus.ACKED, then=F("acked_at")),
    default=Coalesce(F("not_before"), F("created_at")),
    output_field=DateTimeField(),
)


def overdue_condition(*, now: datetime | None = None) -> Q:
    """The Q of an overdue command."""
    now = now or timezone.now()
    ack_deadline, result_deadline = now - ack_timeout(), now - result_timeout()
    pending = Q(
        Q(not_before__isnull=True, created_at__lt=ack_deadline) | Q(not_before__lt=ack_deadline),
        status=CommandStatus.PENDING,
    )
    return pending | Q(status=CommandStatus.ACKED, acked_at__lt=result_deadline)


def overdue_commands(*, host_ids: list | None = None, now: datetime | None = None):
    """Overdue commands, oldest wait first, annotated with `waiting_since` and their host's name."""
    commands = Command.objects.filter(
        overdue_condition(now=now), status__in=[CommandStatus.PENDING, CommandStatus.ACKED]
    )
    if host_ids is not None:
        commands = commands.filter(host_id__in=host_ids)
    return (
        commands.annotate(waiting_since=WAITING_SINCE, host_name=F("host__name"))
        .order_by("waiting_since", "id")
        .only("id", "node_id", "kind", "status", "host_id")
    )


@dataclass(frozen=True)
class OverdueWarning:
    """An open command its agent has not acked (pending) or finished (acked) in time."""

    command_id: int
    node_id: uuid.UUID
    kind: str
    host_id: uuid.UUID
    host_name: str
    status: str
    since: datetime
    timeout_seconds: int


def overdue_warnings(*, host_ids: list | None = None, now: datetime | None = None) -> Iterator[OverdueWarning]:
    timeouts = {CommandStatus.PENDING: settings.AGENT_ACK_TIMEOUT, CommandStatus.ACKED: settings.AGENT_RESULT_TIMEOUT}
    for command in overdue_commands(host_ids=host_ids, now=now).iterator(chunk_size=2000):
        yield OverdueWarning(
            command_id=command.pk,
            node_id=command.node_id,
            kind=command.kind,
            host_id=command.host_id,
            host_name=command.host_name,
            status=command.status,
            since=command.waiting_since,
            timeout_seconds=timeouts[command.status],
        )


def overdue_counts(*, now: datetime | None = None) -> dict[str, int]:
    """Overdue commands per status (`pending`, `acked`), in one grouped query."""
    counts = dict.fromkeys((CommandStatus.PENDING, CommandStatus.ACKED), 0)
    rows = (
        Command.objects.filter(overdue_condition(now=now), status__in=list(counts))
        .order_by()
        .values_list("status")
        .annotate(count=Count("id"))
    )
    counts.update(dict(rows))
    return {str(status): count for status, count in counts.items()}


def publish_agent_gauges(*, now: datetime | None = None) -> None:
    """Sets the /metrics gauges of overdue commands and offline hosts (two small queries)."""
    for status, count in overdue_counts(now=now).items():
        AGENT_COMMANDS_OVERDUE.labels(status=status).set(count)
    AGENT_HOSTS_OFFLINE.set(offline_host_count(now=now))
