"""User API tokens (§5): stored as digests, shown once, expiring, listed and revoked by their
owner, revoked by a password change or deactivation; `Token` and `Bearer` schemes, a 401 that
says what is expected, failures logged and throttled per client address."""

import datetime as dt
import hashlib
import logging

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request
from rest_framework.test import APIClient, APIRequestFactory

from tests.api.conftest import READ_PERMISSIONS, assert_problem
from tests.factories import UserFactory
from tokens import keys
from tokens.authentication import UserTokenAuthentication
from tokens.models import ApiToken
from tokens.services import token_create

pytestmark = pytest.mark.django_db

TOKENS = "/api/v1/auth/tokens/"


def client_with(key: str, scheme: str = "Token", **extra) -> APIClient:
    client = APIClient(**extra)
    client.credentials(HTTP_AUTHORIZATION=f"{scheme} {key}")
    return client


@pytest.fixture
def reader():
    return UserFactory(permissions=READ_PERMISSIONS)


def all_stored_text() -> str:
    """Every value of every row of the token table, as text."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {ApiToken._meta.db_table}")
        return " ".join(str(value) for row in cursor.fetchall() for value in row)


# --- stored as a digest, shown once ----------------------------------------------------------


def test_a_created_token_is_shown_once_and_stored_only_as_its_digest(reader):
    session = APIClient()
    session.force_login(reader)

    created = session.post(TOKENS, {"name": "ci"}, format="json")

    assert created.status_code == 201, created.content
    key = created.json()["token"]
    assert key.startswith("nfu_") and keys.is_well_formed(key)
    assert key not in all_stored_text()
    assert ApiToken.objects.get().digest == hashlib.sha256(key.encode()).hexdigest()
    listed = session.get(TOKENS).json()["results"]
    assert [item["name"] for item in listed] == ["ci"]
    assert "token" not in listed[0] and key not in str(listed)
    assert listed[0]["prefix"] == key[:12]
    assert client_with(key).get("/api/v1/nodes/").status_code == 200


def test_the_answer_that_carries_a_key_is_never_stored_by_a_cache(reader):
    session = APIClient()
    session.force_login(reader)

    created = session.post(TOKENS, {"name": "ci"}, format="json")

    assert created.status_code == 201
    assert "no-store" in created["Cache-Control"] and "private" in created["Cache-Control"]


def test_a_token_cannot_make_a_token(reader):
    """Else a stolen token could mint itself successors forever: its expiry would end nothing."""
    _, key = token_create(user=reader)

    refused = assert_problem(
        client_with(key).post(TOKENS, {"name": "successor"}, format="json"), 403, "permission_denied"
    )

    assert "signed-in session" in refused["detail"] and "manage.py api_token" in refused["detail"]
    assert ApiToken.objects.count() == 1
    assert client_with(key).get(TOKENS).status_code == 200  # listing and revoking by token stay open


def test_with_an_authenticator_only_a_session_verified_by_its_code_makes_tokens(reader):
    device = TOTPDevice.objects.create(user=reader, name="authenticator", confirmed=True)
    session = APIClient()
    session.force_login(reader)  # a password-only session (e.g. opened before the enrolment)

    assert_problem(session.post(TOKENS, {}, format="json"), 403, "permission_denied")

    store = session.session
    store[DEVICE_ID_SESSION_KEY] = device.persistent_id  # what django_otp.login() records after the code
    store.save()
    assert session.post(TOKENS, {}, format="json").status_code == 201


def test_making_a_token_refuses_unknown_fields_and_needs_csrf_with_a_session(reader):
    session = APIClient()
    session.force_login(reader)
    assert_problem(session.post(TOKENS, {"ttl": 5}, format="json"), 400, "invalid")
    strict = APIClient(enforce_csrf_checks=True)
    strict.force_login(reader)

    assert_problem(strict.post(TOKENS, {}, format="json"), 403, "permission_denied")
    assert ApiToken.objects.count() == 0


def test_anonymous_cannot_list_or_make_tokens():
    assert_problem(APIClient().get(TOKENS), 401, "not_authenticated")
    assert_problem(APIClient().post(TOKENS, {}, format="json"), 401, "not_authenticated")


# --- expiry ------------------------------------------------------------------------------------


def test_a_token_expires_after_api_token_ttl(settings, reader):
    settings.API_TOKEN_TTL = 3600
    before = timezone.now()

    token, key = token_create(user=reader)

    assert before + dt.timedelta(seconds=3600) <= token.expires_at <= timezone.now() + dt.timedelta(seconds=3600)
    assert client_with(key).get("/api/v1/nodes/").status_code == 200
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    body = assert_problem(client_with(key).get("/api/v1/nodes/"), 401, "not_authenticated")
    assert "expired" in body["detail"]


def test_an_expired_token_is_not_listed_and_is_deleted_when_its_owner_makes_a_new_one(reader):
    old, _ = token_create(user=reader, name="old")
    ApiToken.objects.filter(pk=old.pk).update(expires_at=timezone.now() - dt.timedelta(days=1))
    _, key = token_create(user=reader, name="new")

    assert [item["name"] for item in client_with(key).get(TOKENS).json()["results"]] == ["new"]
    assert not ApiToken.objects.filter(pk=old.pk).exists()


def test_a_token_minted_without_expiry_never_expires(reader):
    token, key = token_create(user=reader, expires=False)

    assert token.expires_at is None
    assert client_with(key).get(TOKENS).json()["results"][0]["expires_at"] is None


# --- list and revoke: one's own only -----------------------------------------------------------


def test_a_user_lists_and_revokes_only_their_own_tokens(reader):
    other = UserFactory(permissions=READ_PERMISSIONS)
    mine, my_key = token_create(user=reader, name="mine")
    theirs, their_key = token_create(user=other, name="theirs")
    me = client_with(my_key)

    assert [item["id"] for item in me.get(TOKENS).json()["results"]] == [str(mine.pk)]
    assert_problem(me.delete(f"{TOKENS}{theirs.pk}/"), 404, "not_found")
    assert client_with(their_key).get("/api/v1/nodes/").status_code == 200

    assert me.delete(f"{TOKENS}{mine.pk}/").status_code == 204
    assert_problem(me.get("/api/v1/nodes/"), 401, "not_authenticated")
    assert list(ApiToken.objects.values_list("name", flat=True)) == ["theirs"]


def test_revoke_all_revokes_every_token_of_the_caller_and_no_one_elses(reader):
    keys_of_reader = [token_create(user=reader)[1] for _ in range(3)]
    _, their_key = token_create(user=UserFactory(permissions=READ_PERMISSIONS))

    answer = client_with(keys_of_reader[0]).post(f"{TOKENS}revoke-all/")

    assert answer.status_code == 200 and answer.json() == {"revoked": 3}
    for key in keys_of_reader:
        assert_problem(client_with(key).get("/api/v1/nodes/"), 401, "not_authenticated")
    assert client_with(their_key).get("/api/v1/nodes/").status_code == 200


# --- password change and deactivation ----------------------------------------------------------


def test_a_password_change_revokes_the_users_tokens(reader):
    _, key = token_create(user=reader)

    reader.set_password("a-new-password-42")
    reader.save()

    assert not ApiToken.objects.filter(user=reader).exists()
    assert_problem(client_with(key).get("/api/v1/nodes/"), 401, "not_authenticated")


def test_a_password_change_in_the_admin_revokes_the_users_tokens(reader):
    _, key = token_create(user=reader)
    admin = APIClient()
    admin.force_login(UserFactory(is_staff=True, is_superuser=True))

    answer = admin.post(
        f"/admin/auth/user/{reader.pk}/password/",
        {"password1": "Another-pass-4821", "password2": "Another-pass-4821", "usable_password": "true"},
        format="multipart",
    )

    assert answer.status_code == 302, answer.content[:2000]
    assert_problem(client_with(key).get("/api/v1/nodes/"), 401, "not_authenticated")


def test_saving_a_user_without_touching_the_password_keeps_the_tokens(reader):
    _, key = token_create(user=reader)

    reader.first_name = "Ada"
    reader.save()
    reader.last_login = timezone.now()
    reader.save(update_fields=["last_login"])

    assert client_with(key).get("/api/v1/nodes/").status_code == 200


def test_deactivating_a_user_revokes_their_tokens(reader):
    _, key = token_create(user=reader)

    reader.is_active = False
    reader.save()

    assert not ApiToken.objects.filter(user=reader).exists()
    reader.is_active = True
    reader.save()
    assert_problem(client_with(key).get("/api/v1/nodes/"), 401, "not_authenticated")


def test_a_user_deactivated_by_a_bulk_update_is_refused_at_once(reader):
    _, key = token_create(user=reader)

    get_user_model().objects.filter(pk=reader.pk).update(is_active=False)

    assert_problem(client_with(key).get("/api/v1/nodes/"), 401, "not_authenticated")


# --- schemes and malformed headers -------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["Token", "Bearer", "bearer", "TOKEN"])
def test_token_and_bearer_schemes_both_authenticate_a_user(reader, scheme):
    _, key = token_create(user=reader)

    assert client_with(key, scheme).get("/api/v1/nodes/").status_code == 200


@pytest.mark.parametrize(
    "header, says",
    [
        ("KEY", "holds a key but no scheme"),  # Swagger's dialog given a bare key
        ("Basic dXNlcjpwdw==", "Unsupported authorization scheme"),
        ("Bearer", "No token key after the scheme"),
        ("Token   ", "No token key after the scheme"),
        ("Bearer not-a-key", "Malformed token key"),
        ("Token KEY extra", "Malformed token key"),
    ],
)
def test_a_malformed_header_is_401_saying_what_is_expected(reader, header, says):
    key = token_create(user=reader)[1]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header.replace("KEY", key))

    body = assert_problem(client.get("/api/v1/nodes/"), 401, "not_authenticated")

    assert says in body["detail"]
    assert 'Send "Authorization: Token <key>" or "Authorization: Bearer <key>".' in body["detail"]
    assert body["detail"].count(key) == 0


def test_bad_credentials_win_over_a_session(reader):
    client = APIClient()
    client.force_login(reader)
    client.credentials(HTTP_AUTHORIZATION="Bearer nfu_" + "x" * 43)

    assert_problem(client.get("/api/v1/nodes/"), 401, "not_authenticated")


def test_a_key_that_is_no_user_token_never_authenticates(reader):
    """Agents' host tokens (§9) live elsewhere; whatever its shape, a key this table lacks is 401."""
    for key in ("nfu_" + "A" * 43, "0" * 40, keys.new_key()):
        assert_problem(client_with(key, "Bearer").get("/api/v1/nodes/"), 401, "not_authenticated")


def test_the_schema_declares_both_schemes(client):
    schema = client.get("/api/v1/schema/?format=json").json()

    schemes = schema["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "A user API token: `Authorization: Bearer <key>`.",
    }
    assert schemes["tokenAuth"]["type"] == "apiKey" and schemes["tokenAuth"]["name"] == "Authorization"
    upgrade = schema["paths"]["/api/v1/nodes/{id}/upgrade/"]["post"]
    assert {"bearerAuth": []} in upgrade["security"] and {"tokenAuth": []} in upgrade["security"]


# --- failures: logged and throttled per client address -----------------------------------------


@pytest.fixture
def failure_limit(settings):
    settings.API_AUTH_FAILURE_RATE = "3/min"
    cache.clear()
    yield
    cache.clear()


def test_a_failure_is_logged_with_the_client_address_and_request_id(caplog):
    client = client_with("nfu_" + "B" * 43)

    with caplog.at_level(logging.WARNING, logger="tokens.authentication"):
        client.get("/api/v1/nodes/", HTTP_X_REQUEST_ID="req-401", REMOTE_ADDR="203.0.113.9")

    (record,) = [r for r in caplog.records if getattr(r, "event", None) == "api_auth_failed"]
    assert (record.client, record.request_id, record.reason) == ("203.0.113.9", "req-401", "unknown_key")
    assert "nfu_" not in record.getMessage()


def test_a_logged_failure_cannot_forge_log_lines(caplog):
    request = APIRequestFactory().get("/api/v1/x%0Afake%20line%1B[2K", HTTP_AUTHORIZATION="Bearer nfu_" + "B" * 43)

    with caplog.at_level(logging.WARNING, logger="tokens.authentication"), pytest.raises(AuthenticationFailed):
        UserTokenAuthentication().authenticate(Request(request))

    (record,) = [r for r in caplog.records if getattr(r, "event", None) == "api_auth_failed"]
    assert "\n" not in record.getMessage() and "\x1b" not in record.getMessage()
    assert "\\nfake line\\x1b[2K" in record.path


def test_a_request_without_a_client_address_is_refused_and_logged_all_the_same(caplog):
    request = APIRequestFactory().get("/api/v1/nodes/", HTTP_AUTHORIZATION="Bearer nfu_" + "B" * 43)
    del request.META["REMOTE_ADDR"]  # some WSGI servers give none (a UNIX socket)

    with caplog.at_level(logging.WARNING, logger="tokens.authentication"), pytest.raises(AuthenticationFailed):
        UserTokenAuthentication().authenticate(Request(request))

    (record,) = [r for r in caplog.records if getattr(r, "event", None) == "api_auth_failed"]
    assert record.client == "-"


def test_failures_past_the_rate_answer_429_for_that_address_only(failure_limit):
    bad = client_with("nfu_" + "C" * 43)
    here, elsewhere = {"REMOTE_ADDR": "198.51.100.7"}, {"REMOTE_ADDR": "198.51.100.8"}

    answers = [bad.get("/api/v1/nodes/", **here).status_code for _ in range(4)]

    assert answers == [401, 401, 401, 429]
    throttled = assert_problem(bad.get("/api/v1/nodes/", **here), 429, "throttled")
    assert "failed authentications" in throttled["detail"]
    assert 1 <= int(bad.get("/api/v1/nodes/", **here)["Retry-After"]) <= 60
    assert bad.get("/api/v1/nodes/", **elsewhere).status_code == 401
    assert APIClient().get("/api/v1/nodes/", **here).status_code == 401  # no credentials: nothing to throttle


def test_a_valid_token_from_a_throttled_address_is_let_through(failure_limit, reader):
    """Only failures are throttled: a neighbour's (or an attacker's) bad keys from a shared
    address do not lock out a working token."""
    bad, good = client_with("nfu_" + "C" * 43), client_with(token_create(user=reader)[1])
    here = {"REMOTE_ADDR": "198.51.100.7"}
    assert [bad.get("/api/v1/nodes/", **here).status_code for _ in range(4)] == [401, 401, 401, 429]

    assert good.get("/api/v1/nodes/", **here).status_code == 200
    assert bad.get("/api/v1/nodes/", **here).status_code == 429  # and the bad key is still refused


def test_a_forged_x_forwarded_for_does_not_escape_the_throttle(failure_limit):
    bad = client_with("nfu_" + "D" * 43)

    answers = [
        bad.get("/api/v1/nodes/", REMOTE_ADDR="198.51.100.9", HTTP_X_FORWARDED_FOR=f"10.0.0.{i}").status_code
        for i in range(4)
    ]

    assert answers == [401, 401, 401, 429]


def test_behind_a_trusted_proxy_the_forwarded_address_is_counted(failure_limit, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    bad = client_with("nfu_" + "E" * 43)

    def attempt(client_address):
        return bad.get("/api/v1/nodes/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=client_address).status_code

    assert [attempt("192.0.2.1") for _ in range(4)] == [401, 401, 401, 429]
    assert attempt("192.0.2.2") == 401


# --- user endpoints take user credentials only -------------------------------------------------


def _api_views(patterns=None, prefix=""):
    """(route, DRF view class) of every URL pattern, walking includes."""
    from django.urls import URLPattern, URLResolver, get_resolver

    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            yield from _api_views(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern) and hasattr(pattern.callback, "cls"):
            yield prefix + str(pattern.pattern), pattern.callback.cls


def test_every_user_endpoint_authenticates_by_user_token_or_session_only():
    """Agents' host tokens (§9) open only /api/v1/agent/: no other view may take them."""
    from rest_framework.authentication import SessionAuthentication

    checked = 0
    for route, view in _api_views():
        if not route.startswith("api/v1/") or route.startswith("api/v1/agent/"):
            continue
        assert set(view.authentication_classes) <= {UserTokenAuthentication, SessionAuthentication}, route
        checked += 1
    assert checked >= 5
