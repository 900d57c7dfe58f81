"""Failed authentication, counted per client address: past API_AUTH_FAILURE_RATE (e.g.
`20/min`) the address gets 429 `throttled` with Retry-After until the window moves on.

Counts live in Django's cache (CACHES["default"]): point CACHE_URL at a shared cache when
several workers or machines serve the API, or each counts on its own. The client address is
REMOTE_ADDR; behind proxies, DRF's NUM_PROXIES says how many X-Forwarded-For entries to trust
(default 0: the header is ignored, so a client cannot pick its own address)."""

import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle


def client_ip(request) -> str | None:
    """REMOTE_ADDR (or the trusted X-Forwarded-For entry); None when the server gave none. The
    admin login lockout (AXES_CLIENT_IP_CALLABLE) counts per this address too."""
    return BaseThrottle().get_ident(request) or None


def client_address(request) -> str:
    """client_ip() for log lines and counts: "-" when the server gave none."""
    return client_ip(request) or "-"


def _rate() -> tuple[int, int] | tuple[None, None]:
    return SimpleRateThrottle.parse_rate(None, settings.API_AUTH_FAILURE_RATE or None)


def _key(address: str) -> str:
    return f"auth-failures:{address}"


def _recent(address: str, now: float, duration: int) -> list[float]:
    return [moment for moment in cache.get(_key(address), []) if moment > now - duration]


def wait_seconds(address: str) -> float | None:
    """Seconds until `address` may try again, or None if it may now."""
    allowed, duration = _rate()
    if allowed is None:
        return None
    now = time.time()
    recent = _recent(address, now, duration)
    if len(recent) < allowed:
        return None
    return max(recent[-allowed] + duration - now, 1.0)


def record_failure(address: str) -> None:
    allowed, duration = _rate()
    if allowed is None:
        return
    now = time.time()
    recent = _recent(address, now, duration)[-(allowed - 1) :] if allowed > 1 else []
    cache.set(_key(address), [*recent, now], duration)
