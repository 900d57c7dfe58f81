"""Authentication of host agents (§9): `Authorization: Bearer <agent token>`, for the agent
endpoints only. A separate class from the users' token authentication: user tokens and sessions
open nothing here, and the users' classes never accept an agent token. A refused token is
logged and throttled per client address like a user token's (config.throttles.failures)."""

import logging

from django.conf import settings
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission

from config.throttles import failures
from hosts.agent_tokens import TOKEN_PATTERN, agent_token_digest
from hosts.models import Host
from nodes.selectors import agent_poll

logger = logging.getLogger(__name__)


class HostAgent:
    """The principal of an agent request: the host it speaks for. Holds no user permission."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None

    def __init__(self, host: Host, commands: list):
        self.host = host
        self.commands = commands  # its due open commands, read with the host

    def has_perm(self, perm, obj=None) -> bool:
        return False

    def get_username(self) -> str:
        return f"agent:{self.host.name}"

    def __str__(self):
        return self.get_username()


class AgentTokenAuthentication(BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = get_authorization_header(request).split()
        if not header:
            return None
        if header[0].lower() != self.keyword.lower().encode() or len(header) != 2:
            raise self._refused(
                request, "unknown_scheme", "Agent endpoints take `Authorization: Bearer <agent token>` only."
            )
        try:
            token = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise self._refused(request, "malformed_key", "Invalid agent token.") from None
        if not TOKEN_PATTERN.fullmatch(token):
            raise self._refused(request, "malformed_key", "Invalid agent token.")
        # One statement reads the host and its due open commands (the poll's answer): an idle
        # agent's poll costs that one statement; ack and result simply leave the list unused.
        host, commands = agent_poll(agent_token_digest(token))
        if host is None:
            raise self._refused(request, "unknown_key", "Invalid agent token.")
        return HostAgent(host, commands), token

    @staticmethod
    def _refused(request, reason: str, detail: str):
        """Logged (`agent_auth_failed`, with the client address and request id) and counted per
        address with the users' failures (config.throttles.failures): 401, or 429 past the rate."""
        return failures.refuse(request, logger=logger, event="agent_auth", reason=reason, detail=detail)

    def authenticate_header(self, request):
        return f'{self.keyword} realm="agent"'


class IsHostAgent(BasePermission):
    message = "Agent endpoints are for host agents (an agent token)."

    def has_permission(self, request, view):
        return isinstance(request.user, HostAgent)


def agent_seen(host: Host) -> None:
    """Records that the host's agent polled: Host.agent_seen_at, written at most once a minute."""
    now = timezone.now()
    if host.agent_seen_at is None or (now - host.agent_seen_at).total_seconds() >= settings.AGENT_SEEN_INTERVAL:
        Host.objects.filter(pk=host.pk).update(agent_seen_at=now)
        host.agent_seen_at = now


class AgentTokenScheme(OpenApiAuthenticationExtension):
    """drf-spectacular: the agent endpoints' own security scheme."""

    target_class = AgentTokenAuthentication
    name = "agentToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A host's agent token (`manage.py agent_token HOST`), for /api/v1/agent/ only.",
        }
