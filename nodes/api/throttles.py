"""Throttling of API writes, per user. Reads are never throttled."""

from django.conf import settings
from rest_framework.permissions import SAFE_METHODS
from rest_framework.throttling import UserRateThrottle


class WriteRateThrottle(UserRateThrottle):
    """Counts each user's POST/PUT/PATCH/DELETE against API_WRITE_THROTTLE_RATE (e.g. `600/min`;
    empty: no limit). Counts live in Django's cache: point CACHE_URL at a shared cache so the
    limit holds across workers and machines."""

    scope = "writes"

    def get_rate(self):
        return settings.API_WRITE_THROTTLE_RATE or None

    def allow_request(self, request, view):
        return request.method in SAFE_METHODS or super().allow_request(request, view)
