"""Browser-only middleware (config.http.middleware): skipped for API token requests, kept for the rest."""

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from config.http.middleware import BrowserAuthenticationMiddleware, BrowserMessageMiddleware, BrowserSessionMiddleware

MIDDLEWARE = [BrowserSessionMiddleware, BrowserAuthenticationMiddleware, BrowserMessageMiddleware]
TOKEN = "Token " + "0" * 40


def seen_by_the_view(path: str, **headers) -> set[str]:
    """Which of session, user and messages the middleware chain set on the request."""
    seen = set()

    def view(request):
        seen.update(name for name in ("session", "user", "_messages") if hasattr(request, name))
        return HttpResponse()

    handler = view
    for middleware in reversed(MIDDLEWARE):
        handler = middleware(handler)
    handler(RequestFactory().post(path, headers=headers))
    return seen


@pytest.mark.parametrize("authorization", [TOKEN, "Bearer " + "0" * 40, "Basic dXNlcjpwYXNz", "garbage"])
def test_an_api_request_with_credentials_skips_sessions_user_and_messages(authorization):
    # The API authenticates it by its Authorization header alone (or answers 401), never by a session.
    assert seen_by_the_view("/api/v1/nodes/", authorization=authorization) == set()


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/api/v1/nodes/", {}),  # a session (browser) call to the API
        ("/admin/nodes/node/", {"authorization": TOKEN}),  # the admin is never token-authenticated
    ],
)
def test_every_other_request_gets_them(path, headers):
    assert seen_by_the_view(path, **headers) == {"session", "user", "_messages"}


@pytest.mark.django_db
def test_the_api_still_accepts_a_session_and_a_token(client):
    from tests.api.conftest import READ_PERMISSIONS
    from tests.factories import UserFactory
    from tokens.services import token_create

    user = UserFactory(permissions=READ_PERMISSIONS)
    assert (
        client.get("/api/v1/hosts/", headers={"authorization": f"Token {token_create(user=user)[1]}"}).status_code
        == 200
    )
    assert client.get("/api/v1/hosts/").status_code == 401
    client.force_login(user)
    assert client.get("/api/v1/hosts/").status_code == 200
