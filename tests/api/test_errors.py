"""Malformed input of every kind is a 4xx problem-details answer, never a 500, and changes nothing;
Django's own errors under /api/ are problem details too, the admin's stay HTML."""

import json

import pytest
from django.core.exceptions import RequestDataTooBig
from django.db import OperationalError
from django.test import RequestFactory
from rest_framework.exceptions import Throttled

from config.errors import Busy
from config.http.exceptions import bad_request, problem_exception_handler, server_error
from tests.api.conftest import assert_problem, snapshot

pytestmark = pytest.mark.django_db

NIL = "00000000-0000-0000-0000-000000000000"


def post_raw(client, path, body: bytes | str, content_type="application/json", **extra):
    return client.generic("POST", path, body, content_type=content_type, **extra)


def create_body(fleet, **fields):
    return {"name": "new", "host_id": str(fleet["host"].pk), "image_id": str(fleet["v1"].pk), **fields}


@pytest.mark.parametrize(
    "field, value",
    [
        ("host_id", 5),
        ("host_id", False),
        ("host_id", ["x"]),
        ("host_id", "not-a-uuid"),
        ("image_id", 123456789012345678901234567890),
        ("image_id", {"id": "x"}),
        ("name", 42),
        ("name", ""),
        ("name", "x" * 10_000),
        ("name", "a\x00b"),
        ("force", "true"),
        ("force", 1),
        ("force", None),
        ("properties", ["archive"]),
        ("properties", "archive=on"),
        ("properties", None),
        ("properties", {"archive": 1}),
        ("properties", {"archive": True}),
        ("properties", {"archive": None}),
        ("properties", {"archive": {"nested": "x"}}),
        ("properties", {"archive": "a\x00"}),
        ("properties", {"a\x00": "on"}),
        ("colour", "blue"),
    ],
)
def test_create_with_a_wrongly_typed_or_unknown_field_is_invalid(admin_client, fleet, field, value):
    before = snapshot()

    body = assert_problem(admin_client.post("/api/v1/nodes/", create_body(fleet, **{field: value})), 400, "invalid")

    assert field in body["errors"]
    assert snapshot() == before


@pytest.mark.parametrize(
    "field, value",
    [
        ("image_id", 0),
        ("image_id", False),
        ("image_id", 1.5),
        ("force", "false"),
        ("force", 0),
        ("dry_run", "yes"),
        ("dry_run", 1),
        ("node_id", NIL),
    ],
)
def test_upgrade_with_a_wrongly_typed_or_unknown_field_is_invalid(admin_client, fleet, field, value):
    before = snapshot()
    payload = {"image_id": str(fleet["v2"].pk), field: value}

    body = assert_problem(admin_client.post(f"/api/v1/nodes/{fleet['node'].pk}/upgrade/", payload), 400, "invalid")

    assert field in body["errors"]
    assert snapshot() == before


def test_unknown_fields_are_named_in_the_errors(admin_client, fleet):
    payload = {"image_id": str(fleet["v2"].pk), "dryrun": True, "host_id": NIL}

    body = assert_problem(admin_client.post(f"/api/v1/nodes/{fleet['node'].pk}/upgrade/", payload), 400, "invalid")

    assert body["errors"] == {"dryrun": ["Unknown field."], "host_id": ["Unknown field."]}


def test_a_missing_required_field_is_invalid(admin_client, fleet):
    body = assert_problem(admin_client.post(f"/api/v1/nodes/{fleet['node'].pk}/upgrade/", {}), 400, "invalid")

    assert "image_id" in body["errors"]


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b"[]",
        b'"a string"',
        b"42",
        b"null",
        b'{"image_id": NaN}',
        b'{"image_id": Infinity}',
        b'{"image_id": 1e999}',
        b'{"image_id": ' + b"9" * 5000 + b"}",
        b'{"image_id": "\\ud800"}',
        b'{"image_id": "x", "image_id": 5}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
        b"\xff\xfe{}",
        b'{"image_id": "\xc3\x28"}',
        b"\xef\xbb\xbf{}",
        '{"image_id": "é"}'.encode("utf-16"),
    ],
    ids=[
        "empty",
        "truncated",
        "array",
        "string",
        "number",
        "null",
        "nan",
        "infinity",
        "huge-float",
        "huge-int",
        "lone-surrogate",
        "duplicate-key",
        "deep-array",
        "deep-object",
        "bad-utf8-start",
        "bad-utf8-inside",
        "utf8-bom",
        "utf16",
    ],
)
def test_a_malformed_body_is_invalid_never_a_500(admin_client, fleet, raw):
    before = snapshot()

    response = post_raw(admin_client, f"/api/v1/nodes/{fleet['node'].pk}/upgrade/", raw)

    assert_problem(response, 400, "invalid")
    assert snapshot() == before


@pytest.mark.parametrize("where", ["name", "value", "key"])
def test_lone_surrogates_in_strings_are_invalid(admin_client, fleet, where):
    texts = {
        "name": '"name": "\\udc80"',
        "value": '"name": "n", "properties": {"archive": "\\ud800"}',
        "key": '"name": "n", "properties": {"\\ud800": "on"}',
    }
    raw = f'{{"host_id": "{fleet["host"].pk}", "image_id": "{fleet["v1"].pk}", {texts[where]}}}'
    before = snapshot()

    body = assert_problem(post_raw(admin_client, "/api/v1/nodes/", raw), 400, "invalid")

    assert ("name" if where == "name" else "properties") in body["errors"]
    assert snapshot() == before


def test_non_ascii_text_round_trips(admin_client, fleet):
    raw = json.dumps(create_body(fleet, name="nœud-東京-🚀"), ensure_ascii=False).encode()

    response = post_raw(admin_client, "/api/v1/nodes/", raw)

    assert response.status_code == 201
    assert response.json()["name"] == "nœud-東京-🚀"


def test_a_body_past_the_size_limit_is_413(admin_client, fleet, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    raw = json.dumps({"image_id": str(fleet["v2"].pk), "pad": "x" * 2000})

    response = post_raw(admin_client, f"/api/v1/nodes/{fleet['node'].pk}/upgrade/", raw)

    assert_problem(response, 413, "request_too_large")


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "", "app/json"],
)
def test_a_body_that_is_not_json_is_415(admin_client, fleet, content_type):
    before = snapshot()

    response = post_raw(admin_client, "/api/v1/nodes/", "name=x", content_type=content_type)

    assert_problem(response, 415, "unsupported_media_type")
    assert snapshot() == before


def test_a_charset_parameter_is_accepted_for_utf8_json(admin_client, fleet):
    raw = json.dumps(create_body(fleet))

    response = post_raw(admin_client, "/api/v1/nodes/", raw, content_type="application/json; charset=utf-8")

    assert response.status_code == 201


def test_an_unacceptable_accept_header_is_406(admin_client, fleet):
    response = admin_client.get("/api/v1/nodes/", HTTP_ACCEPT="application/xml")

    assert_problem(response, 406, "not_acceptable")


def test_an_unsupported_method_is_405_with_allow(admin_client, fleet):
    response = admin_client.put(f"/api/v1/nodes/{fleet['node'].pk}/", {})

    assert_problem(response, 405, "method_not_allowed")
    assert response["Allow"] == "GET, PATCH, DELETE, HEAD, OPTIONS"  # PATCH: auto_upgrade only (§10)


def test_get_on_the_upgrade_action_is_405(admin_client, fleet):
    assert_problem(admin_client.get(f"/api/v1/nodes/{fleet['node'].pk}/upgrade/"), 405, "method_not_allowed")


def test_an_unknown_api_path_is_problem_details_and_other_paths_keep_html(admin_client):
    body = assert_problem(admin_client.get("/api/v1/widgets/"), 404, "not_found")
    assert "/api/v1/widgets/" in body["detail"]

    html = admin_client.get("/no-such-page/")
    assert html.status_code == 404
    assert html["Content-Type"].startswith("text/html")


def test_a_disallowed_host_under_api_is_a_400_problem_and_html_elsewhere(admin_client):
    body = assert_problem(admin_client.get("/api/v1/nodes/", HTTP_HOST="evil.example"), 400, "invalid")
    assert "ALLOWED_HOSTS" not in json.dumps(body)

    html = admin_client.get("/admin/login/", HTTP_HOST="evil.example")
    assert html.status_code == 400
    assert html["Content-Type"].startswith("text/html")


def test_django_request_data_too_big_under_api_is_413():
    request = RequestFactory().post("/api/v1/nodes/")

    response = bad_request(request, RequestDataTooBig("Request body exceeded settings.DATA_UPLOAD_MAX_MEMORY_SIZE."))

    assert (response.status_code, response["Content-Type"]) == (413, "application/problem+json")
    assert json.loads(response.content)["code"] == "request_too_large"


def test_a_server_error_under_api_is_problem_details_and_html_elsewhere():
    response = server_error(RequestFactory().get("/api/v1/nodes/"))
    assert (response.status_code, response["Content-Type"]) == (500, "application/problem+json")
    assert json.loads(response.content)["code"] == "server_error"

    assert server_error(RequestFactory().get("/admin/"))["Content-Type"].startswith("text/html")


def test_throttling_answers_429_with_retry_after():
    response = problem_exception_handler(Throttled(wait=2.5), {})

    assert response.status_code == 429
    assert response.data["code"] == "throttled"
    assert response["Retry-After"] == "3"


@pytest.mark.parametrize("error", [Busy("The database is busy.", retry_after=2), OperationalError("gone")])
def test_database_unavailability_answers_busy_with_retry_after(error):
    response = problem_exception_handler(error, {})

    assert response.status_code == 503
    assert response.data["code"] == "busy"
    assert response["Retry-After"] == ("2" if isinstance(error, Busy) else "1")


def test_an_unexpected_exception_is_left_to_djangos_500_handler():
    assert problem_exception_handler(ZeroDivisionError(), {}) is None


def test_an_unknown_api_path_is_problem_details_even_under_debug(client, settings):
    settings.DEBUG = True  # make run's mode: Django would answer its HTML debug page
    answer = client.get("/api/v1/no-such-thing/")
    assert (answer.status_code, answer["Content-Type"]) == (404, "application/problem+json")
    assert answer.json()["code"] == "not_found"


def test_an_unknown_api_path_is_not_found_for_a_session_post_without_csrf_token(fleet):
    """Found by the schema fuzzer: the catch-all must not answer CSRF's HTML 403."""
    from django.test import Client

    from tests.factories import UserFactory

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(UserFactory())
    answer = browser.post("/api/v1/nodes/not-a-node/upgrade/", {"image_id": False}, content_type="application/json")
    assert (answer.status_code, answer["Content-Type"]) == (404, "application/problem+json")
