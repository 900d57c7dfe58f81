"""Content-Security-Policy and Permissions-Policy on the admin, the API docs and the API."""

import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import UserFactory
from tokens.services import token_create

pytestmark = pytest.mark.django_db


def directives(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}


def pages():
    staff = Client()
    staff.force_login(UserFactory(is_staff=True, is_superuser=True))
    api = Client(HTTP_AUTHORIZATION=f"Token {token_create(user=UserFactory(permissions=['hosts.view_host']))[1]}")
    return {
        "admin login": Client().get(reverse("admin:login")),
        "admin list": staff.get(reverse("admin:hosts_host_changelist")),
        "api docs": Client().get("/api/v1/docs/"),
        "api schema": Client().get("/api/v1/schema/"),
        "api list": api.get("/api/v1/hosts/"),
        "api error": api.get("/api/v1/no-such-thing/"),
    }


def test_every_kind_of_response_carries_the_policies():
    for name, response in pages().items():
        assert response.status_code in (200, 404), name
        policy = directives(response)
        assert policy["default-src"] == ["'self'"], name
        assert policy["frame-ancestors"] == ["'none'"], name
        assert policy["object-src"] == ["'none'"], name
        assert "'unsafe-inline'" not in policy.get("script-src", policy["default-src"]), name
        permissions = response["Permissions-Policy"]
        assert "camera=()" in permissions and "geolocation=()" in permissions and "microphone=()" in permissions


def test_the_docs_page_has_no_inline_script_and_its_style_carries_the_nonce():
    response = Client().get("/api/v1/docs/")
    html = response.content.decode()
    nonce = next(source for source in directives(response)["style-src"] if source.startswith("'nonce-"))
    assert f'<style nonce="{nonce[7:-1]}">' in html
    assert "<script>" not in html  # every script has a src
