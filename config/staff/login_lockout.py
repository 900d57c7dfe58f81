"""What repeated failed logins do (docs/operations.md "Logins"). Counts are django-axes'
(AccessAttempt rows in the database: every worker and app server sees them), within the
cool-off (AXES_COOLOFF_MINUTES):

- **a username from one address** (the pair): AXES_FAILURE_LIMIT failures lock that pair out
  (429) — django-axes, AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]];
- **one address, any usernames**: AXES_ADDRESS_FAILURE_LIMIT failures (looser: people behind
  one NAT share it) lock the address out (LockoutHandler below);
- **one username, any addresses**: never locked — or anyone could lock anyone out, the
  superuser included, with five requests — but slowed down: from AXES_FAILURE_LIMIT failures
  on, every attempt for it waits LOGIN_SLOWDOWN_SECONDS * 2**(failures - limit), at most
  LOGIN_SLOWDOWN_MAX_SECONDS, before its password is checked (slowdown_before_check), right
  password or not, so the answer's timing tells nothing. The owner still gets in from their
  own address with the right password; an attacker spread over many addresses gets a few
  tries per address (the pair and address limits), each made slow.

A delayed attempt holds its server thread while it waits: the cap keeps that short, and the
pair and address limits bound how many attempts one address can make wait."""

import logging
import time

from axes.attempts import get_cool_off_threshold
from axes.handlers.database import AxesDatabaseHandler
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_client_username
from axes.models import AccessAttempt
from axes.signals import user_locked_out
from django.conf import settings
from django.db.models import Sum

from config.http.logging import log_event

logger = logging.getLogger("nodefleet.logins")


def _failures(request, **lookup) -> int:
    recent = AccessAttempt.objects.filter(attempt_time__gte=get_cool_off_threshold(request), **lookup)
    return recent.aggregate(total=Sum("failures_since_start"))["total"] or 0


def slowdown(failures: int) -> float:
    """Seconds an attempt for a username with `failures` recent failures waits (0: none)."""
    over = failures - settings.AXES_FAILURE_LIMIT
    if over < 0:
        return 0.0
    return min(settings.LOGIN_SLOWDOWN_SECONDS * 2**over, settings.LOGIN_SLOWDOWN_MAX_SECONDS)


def slowdown_before_check(request, username: str | None) -> None:
    """Waits as long as `username`'s recent failures (from every address) say; logs it."""
    if not username:
        return
    AxesProxyHandler.update_request(request)  # the attempt's time and address, as axes sees them
    failures = _failures(request, username=username)
    seconds = slowdown(failures)
    if seconds <= 0:
        return
    log_event(
        logger,
        "login_slowed",
        logging.WARNING,
        username=username,
        failures=failures,
        seconds=seconds,
        client=request.axes_ip_address or "-",
    )
    time.sleep(seconds)


class LockoutHandler(AxesDatabaseHandler):
    """django-axes' database handler plus the per-address limit (AXES_ADDRESS_FAILURE_LIMIT)."""

    def address_locked(self, request) -> bool:
        return _failures(request, ip_address=request.axes_ip_address) >= settings.AXES_ADDRESS_FAILURE_LIMIT

    def is_locked(self, request, credentials=None) -> bool:
        return super().is_locked(request, credentials) or self.address_locked(request)

    def user_login_failed(self, sender, credentials, request=None, **kwargs):
        super().user_login_failed(sender, credentials, request, **kwargs)
        if request is not None and not request.axes_locked_out and self.address_locked(request):
            request.axes_locked_out = True
            request.axes_credentials = credentials
            user_locked_out.send(
                "axes",
                request=request,
                username=get_client_username(request, credentials),
                ip_address=request.axes_ip_address,
            )
