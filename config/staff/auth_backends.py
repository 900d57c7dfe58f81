"""The lockout backend: django-axes' check in front of ModelBackend, for every login that
comes with a request (the admin's form, DRF's authentication classes)."""

from axes.backends import AxesStandaloneBackend


class LockoutBackend(AxesStandaloneBackend):
    """django-axes refuses to run without a request; without one there is no client whose
    attempts could be counted (Django's test client `login()`, a shell), so the check is skipped
    and ModelBackend decides alone, as it would without axes. Every HTTP login has a request."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
