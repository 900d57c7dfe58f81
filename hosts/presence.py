"""Whether a host's agent is there (SPEC §9): a host with an agent token whose agent has not
polled for AGENT_OFFLINE_AFTER seconds (or never) is offline. `Host.agent_seen_at` is written
by the poll at most once a minute, so "seen" is exact to about a minute."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from hosts.models import Host

ONLINE, OFFLINE, NO_AGENT = "online", "offline", "no agent"


def offline_after() -> timedelta:
    return timedelta(seconds=settings.AGENT_OFFLINE_AFTER)


def offline_condition(*, now: datetime | None = None) -> Q:
    deadline = (now or timezone.now()) - offline_after()
    return Q(agent_token_digest__isnull=False) & (Q(agent_seen_at__isnull=True) | Q(agent_seen_at__lt=deadline))


def agent_presence(host: Host, *, now: datetime | None = None) -> str:
    """ONLINE, OFFLINE or NO_AGENT (no token issued), from the host row alone."""
    if not host.agent_token_digest:
        return NO_AGENT
    deadline = (now or timezone.now()) - offline_after()
    return ONLINE if host.agent_seen_at is not None and host.agent_seen_at >= deadline else OFFLINE


def offline_host_count(*, now: datetime | None = None) -> int:
    return Host.objects.filter(offline_condition(now=now)).count()
