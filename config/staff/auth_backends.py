"""The lockout backend: django-axes' check in front of ModelBackend, for every login that
comes with a request (the admin's form, DRF's authentication classes), then the slowdown of a
username under attack (config.staff.login_lockout)."""

from axes.backends import AxesStandaloneBackend
from axes.exceptions import AxesBackendPermissionDenied

from config.staff.login_lockout import slowdown_before_check


class LockoutBackend(AxesStandaloneBackend):
    """django-axes refuses to run without a request; without one there is no client whose
    attempts could be counted (Django's test client `login()`, a shell), so the check is skipped
    and ModelBackend decides alone, as it would without axes. Every HTTP login has a request.
    A refusal by the lockout marks the request (`nf_login_refused`), so the login log says
    `locked_out`, not a wrong password."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        try:
            super().authenticate(request, username=username, password=password, **kwargs)
        except AxesBackendPermissionDenied:
            request.nf_login_refused = True
            raise
        slowdown_before_check(request, username)
        return None
