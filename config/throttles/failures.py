"""Failed authentication, counted per client address: past API_AUTH_FAILURE_RATE (e.g.
`20/min`) failures in a window, the address's further failures answer 429 `throttled` with
Retry-After until the window ends. Only failures are counted and refused: a valid credential
from a throttled address is let through (a key is 256 random bits, so what the throttle
guards against is floods of bad credentials, not guessing one).

The count is config.throttles.rates' (one atomic count in the database, or in CACHE_URL's cache): every
worker of every app server shares it. User tokens (tokens.authentication) and host agents'
tokens (nodes.agent.authentication) count together. The client address is REMOTE_ADDR;
behind proxies, DRF's NUM_PROXIES says how many X-Forwarded-For entries to trust (default 0:
the header is ignored, so a client cannot pick its own address)."""

import logging

from django.conf import settings
from rest_framework import exceptions
from rest_framework.throttling import BaseThrottle

from config.http.logging import log_event, request_id
from config.text import escape_unprintable
from config.throttles import rates


def client_ip(request) -> str | None:
    """REMOTE_ADDR (or the trusted X-Forwarded-For entry); None when the server gave none. The
    admin login lockout (AXES_CLIENT_IP_CALLABLE) counts per this address too."""
    return BaseThrottle().get_ident(request) or None


def client_address(request) -> str:
    """client_ip() for log lines and counts: "-" when the server gave none."""
    return client_ip(request) or "-"


def refuse(request, *, logger: logging.Logger, event: str, reason: str, detail: str) -> exceptions.APIException:
    """Counts one failed authentication of `request`'s address and logs it (`<event>_failed`
    with the address, reason, path and request id — never the credential); returns what to
    raise: 429 Throttled past the rate (logged as `<event>_throttled`), else 401."""
    address = client_address(request)
    counted = rates.hit(f"auth-failures:{address}", settings.API_AUTH_FAILURE_RATE)
    over = counted is not None and counted.over
    log_event(
        logger,
        f"{event}_throttled" if over else f"{event}_failed",
        logging.WARNING,
        client=escape_unprintable(address),
        reason=reason,
        path=escape_unprintable(request.path),
        request_id=request_id.get(),
    )
    if over:
        return exceptions.Throttled(counted.retry_after(), detail="Too many failed authentications from this address.")
    return exceptions.AuthenticationFailed(detail)
