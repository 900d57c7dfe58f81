"""Authentication of users by API token (§5): `Authorization: Token <key>` or `Bearer <key>`.

One class for user tokens only: agents' host tokens (§9) have their own class on the agent
endpoints, and a key this class does not know is refused whatever it is. A header that is not
one of the two schemes with a well-formed key is a 401 whose detail says what is expected.
Failures are logged with the client address and request id, and counted per address
(config.throttles.failures): past the limit, a failure answers 429; a valid key is never refused by it."""

import logging

from django.utils import timezone
from rest_framework.authentication import BaseAuthentication

from config.throttles import failures
from tokens import keys, selectors

logger = logging.getLogger(__name__)

SCHEMES = ("Token", "Bearer")
EXPECTED = 'Send "Authorization: Token <key>" or "Authorization: Bearer <key>".'


class Refused(Exception):
    """Why presented credentials do not authenticate (becomes AuthenticationFailed)."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def _key(header: str) -> str:
    scheme, _, key = header.partition(" ")
    if scheme.lower() not in {s.lower() for s in SCHEMES}:
        if keys.is_well_formed(header.strip()):
            raise Refused("no_scheme", f"The Authorization header holds a key but no scheme. {EXPECTED}")
        raise Refused("unknown_scheme", f"Unsupported authorization scheme. {EXPECTED}")
    key = key.strip()
    if not key:
        raise Refused("no_key", f"No token key after the scheme. {EXPECTED}")
    if not keys.is_well_formed(key):
        raise Refused("malformed_key", f"Malformed token key. {EXPECTED}")
    return key


def _user(key: str):
    token = selectors.token_for_key(key)
    if token is None or not token.user.is_active:
        raise Refused("unknown_key", "Invalid token: it does not exist or was revoked.")
    if token.expires_at is not None and token.expires_at <= timezone.now():
        raise Refused("expired", "The token has expired; ask for a new one (POST /api/v1/auth/tokens/).")
    return token.user, token


class UserTokenAuthentication(BaseAuthentication):
    """A user's API token (tokens.models.ApiToken): one SQL statement for the token, the user
    and the user's permissions (tokens.selectors.token_for_key); `request.auth` is the token."""

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None  # no credentials: the next class (session) or 401
        try:
            return _user(_key(header))
        except Refused as refused:
            raise failures.refuse(
                request, logger=logger, event="api_auth", reason=refused.reason, detail=refused.detail
            ) from None

    def authenticate_header(self, request):
        return ", ".join(SCHEMES)
