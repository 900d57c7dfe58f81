"""Fixed-window counts for the throttles (failed authentication per client address, API writes
per user), shared by every worker and every app server.

A rate such as `20/min` allows 20 hits per window of 60 s aligned on the clock; the 21st of a
window is over the limit until the window ends (Retry-After: the seconds left). Each hit is
one atomic count, never a read-modify-write, so concurrent requests cannot undercount:

- by default in the database the app already has (config.throttles.models.RateWindow, made by migrate):
  one `INSERT … ON CONFLICT DO UPDATE … RETURNING` statement (PostgreSQL, and SQLite for
  `make run`);
- when CACHE_URL names a cache (Redis, memcached), in that cache: `add` then `incr`, which
  those caches do atomically (a `locmemcache://` would count per process again).

A fixed window lets a client spend its allowance at the end of one window and again at the
start of the next (up to twice the rate in a short span); the limits here are guards against
guessing and floods, where that does not matter, and the price buys one statement per hit."""

import math
import random
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from rest_framework.throttling import SimpleRateThrottle

from config.throttles.models import RateWindow

#: One hit in this many also deletes the database's ended windows, so the table stays small.
PRUNE_ONE_IN = 200

_TABLE = RateWindow._meta.db_table
_UPSERT = (
    f"INSERT INTO {_TABLE} (key, window_end, count) VALUES (%s, %s, 1) "
    f"ON CONFLICT (key) DO UPDATE SET "
    f"count = CASE WHEN {_TABLE}.window_end = excluded.window_end THEN {_TABLE}.count + 1 ELSE 1 END, "
    f"window_end = excluded.window_end "
    f"RETURNING count"
)


@dataclass(frozen=True)
class Hit:
    count: int  # hits in this window, this one included
    allowed: int
    window_end: int  # Unix seconds

    @property
    def over(self) -> bool:
        return self.count > self.allowed

    def retry_after(self, now: float | None = None) -> int:
        """Whole seconds until the window ends (at least 1)."""
        return max(math.ceil(self.window_end - (time.time() if now is None else now)), 1)


def parse(rate: str | None) -> tuple[int, int] | None:
    """`20/min` → (20, 60); empty → None (no limit). DRF's rate syntax."""
    allowed, duration = SimpleRateThrottle.parse_rate(None, rate or None)
    return None if allowed is None else (allowed, duration)


def shared_cache() -> bool:
    """Counts go to Django's cache when CACHE_URL names one, else to the database."""
    return settings.RATE_COUNTS == "cache"


def hit(key: str, rate: str | None) -> Hit | None:
    """Counts one hit of `key` (e.g. `auth-failures:203.0.113.7`) in the current window of
    `rate`; None when the rate is empty (no limit, nothing counted)."""
    parsed = parse(rate)
    if parsed is None:
        return None
    allowed, duration = parsed
    window_end = (int(time.time()) // duration + 1) * duration
    if shared_cache():
        cache_key = f"rate:{key}:{window_end}"
        cache.add(cache_key, 0, timeout=duration + 1)
        try:
            count = cache.incr(cache_key)
        except ValueError:  # evicted between add and incr
            cache.add(cache_key, 1, timeout=duration + 1)
            count = 1
        return Hit(count, allowed, window_end)
    with connection.cursor() as cursor:
        cursor.execute(_UPSERT, [key, window_end])
        (count,) = cursor.fetchone()
    if random.randrange(PRUNE_ONE_IN) == 0:
        RateWindow.objects.filter(window_end__lt=int(time.time())).delete()
    return Hit(count, allowed, window_end)
