"""Browser-only middleware: sessions, the session's user and messages serve the admin (and
session-authenticated API calls), never a request that carries an API token. For those they are
skipped outright, so they cost an API client nothing (bench/middleware_cost.py measures it).
CSRF stays Django's own class (`check --deploy` looks for it by name): every API view is
CSRF-exempt, so for an API request it only reads the cookie, a microsecond.

A request is a token request when its path is under /api/ and its Authorization header names
the scheme of one of the API's token authentication classes (`Token ...`). Such a request is
authenticated by that class or refused with 401: DRF never falls back to the session for it, so
nothing the skipped middleware would have set up is read."""

import functools

from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware

API_PREFIX = "/api/"


@functools.cache
def _token_schemes() -> tuple[bytes, ...]:
    """The lower-cased schemes (`token`) of the API's authentication classes that have one."""
    from rest_framework.settings import api_settings

    return tuple(
        keyword.lower().encode()
        for keyword in (getattr(cls, "keyword", None) for cls in api_settings.DEFAULT_AUTHENTICATION_CLASSES)
        if keyword
    )


def is_token_request(request) -> bool:
    if not request.path_info.startswith(API_PREFIX):
        return False
    authorization = request.META.get("HTTP_AUTHORIZATION")
    if not authorization:
        return False
    scheme = authorization.split(" ", 1)[0].lower().encode("latin-1", "replace")
    return scheme in _token_schemes()


class BrowserOnly:
    """Mixin for a MiddlewareMixin class: passes token requests straight on to the next layer."""

    def __call__(self, request):
        if is_token_request(request):
            return self.get_response(request)
        return super().__call__(request)


class BrowserSessionMiddleware(BrowserOnly, SessionMiddleware):
    pass


class BrowserAuthenticationMiddleware(BrowserOnly, AuthenticationMiddleware):
    pass


class BrowserMessageMiddleware(BrowserOnly, MessageMiddleware):
    pass
