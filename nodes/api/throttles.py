"""Throttling of API writes, per user. Reads are never throttled."""

from django.conf import settings
from rest_framework.permissions import SAFE_METHODS
from rest_framework.throttling import BaseThrottle

from config.throttles import rates


class WriteRateThrottle(BaseThrottle):
    """Counts each user's POST/PUT/PATCH/DELETE against API_WRITE_THROTTLE_RATE (e.g. `600/min`;
    empty: no limit), in fixed windows shared by every worker and app server (config.throttles.rates:
    one atomic count per write, in the database or CACHE_URL's cache). A write past the rate
    answers 429 `throttled` with Retry-After: the seconds until the window ends."""

    def __init__(self):
        self.counted = None

    def allow_request(self, request, view):
        if request.method in SAFE_METHODS:
            return True
        user = request.user
        who = f"user:{user.pk}" if user and user.is_authenticated and user.pk is not None else self.get_ident(request)
        self.counted = rates.hit(f"writes:{who}", settings.API_WRITE_THROTTLE_RATE)
        return self.counted is None or not self.counted.over

    def wait(self):
        return self.counted.retry_after() if self.counted is not None else None
