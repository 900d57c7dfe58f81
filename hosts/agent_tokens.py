"""Agent tokens (§9): one per host, shown once, only its SHA-256 stored; issuing a new one
revokes the old (the digest is replaced in one UPDATE)."""

import hashlib
import re
import secrets

from django.db import transaction
from django.utils import timezone

from config.errors import InvalidState, NotFound
from hosts.models import Host

#: Agent tokens look nothing like user tokens (prefix and alphabet), so neither kind is ever
#: looked up as the other.
TOKEN_PREFIX = "nfa_"
TOKEN_PATTERN = re.compile(r"nfa_[A-Za-z0-9_-]{43}")


def agent_token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def agent_token_issue(*, host: Host, rotate: bool = False) -> str:
    """A new agent token for `host`, returned once. A host that already has one is refused
    (`invalid_state`) unless `rotate`, which revokes the old token."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        try:
            locked = (
                Host.objects.select_for_update(no_key=True).only("pk", "name", "agent_token_digest").get(pk=host.pk)
            )
        except Host.DoesNotExist:
            raise NotFound(f"No host with id {host.pk}.") from None
        if locked.agent_token_digest and not rotate:
            raise InvalidState(
                f"Host {locked.name} already has an agent token; rotate it to issue a new one (the old stops working).",
                state="token_issued",
            )
        Host.objects.filter(pk=host.pk).update(
            agent_token_digest=agent_token_digest(token), agent_token_created_at=timezone.now()
        )
    return token
