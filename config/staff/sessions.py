"""Staff sessions end after SESSION_COOKIE_AGE since login (8 hours by default) and after
STAFF_IDLE_TIMEOUT without a request (30 minutes), whatever keeps the cookie alive.

The session keeps when it began and when it was last used; the last use is written at most once
a minute, so a busy page does not write its session on every request."""

import time

from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

STARTED = "nf_session_started"
LAST_SEEN = "nf_session_last_seen"
#: How stale the recorded last use may get before it is written again (seconds).
WRITE_EVERY = 60


class StaffSessionMiddleware:
    """After AuthenticationMiddleware: logs out a staff session that is too old or idle too long
    (the request then goes on as anonymous: the admin asks to log in again)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.is_staff:
            self._check(request)
        return self.get_response(request)

    @staticmethod
    def _check(request):
        now = int(time.time())
        session = request.session
        started, last_seen = session.get(STARTED), session.get(LAST_SEEN)
        if started is not None and (
            now - started > settings.SESSION_COOKIE_AGE or now - last_seen > settings.STAFF_IDLE_TIMEOUT
        ):
            logout(request)  # flushes the session; request.user becomes AnonymousUser
            return
        if started is None:
            session[STARTED] = now
        if last_seen is None or now - last_seen >= WRITE_EVERY:
            session[LAST_SEEN] = now


@receiver(user_logged_in, dispatch_uid="nodefleet.session_started")
def session_started(sender, request, user, **kwargs):
    """A login starts the clocks afresh (the session may hold a previous login's)."""
    if request is not None and hasattr(request, "session"):
        request.session[STARTED] = request.session[LAST_SEEN] = int(time.time())
