"""Browser-only middleware: sessions, the session's user and messages serve the admin (and
session-authenticated API calls), never a request that carries an API token. For those they are
skipped outright, so they cost an API client nothing (bench/middleware_cost.py measures it).
CSRF stays Django's own class (`check --deploy` looks for it by name): every API view is
CSRF-exempt, so for an API request it only reads the cookie, a microsecond.

A request is a token request when its path is under /api/ and it carries an Authorization
header: the API authenticates it by that header alone (a user token, or an agent's host token on
the agent endpoints) or refuses it with 401, never by the session, so nothing the skipped
middleware would have set up is read. Everything else (the admin, a browser's session calls to
the API) goes through them as before."""

from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware

API_PREFIX = "/api/"


def is_token_request(request) -> bool:
    return "HTTP_AUTHORIZATION" in request.META and request.path_info.startswith(API_PREFIX)


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
