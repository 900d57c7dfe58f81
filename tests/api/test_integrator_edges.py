"""The edges an integrator meets (issue 11): what the API answers to a duplicate JSON key, an
over-long property value, `Accept: application/problem+json`, a path typed slightly wrong, and
a health probe with the load balancer's own Host header."""

import json

import pytest

from tests.api.conftest import PROBLEM, assert_problem, snapshot

pytestmark = pytest.mark.django_db


def post_raw(client, path, raw: str):
    return client.generic("POST", path, raw, content_type="application/json")


# --- duplicate keys and property values --------------------------------------------------------


def test_a_key_given_twice_is_invalid_and_nothing_runs(admin_client, fleet):
    before = snapshot()
    raw = f'{{"image_id": "{fleet["v2"].pk}", "dry_run": false, "dry_run": true}}'

    response = post_raw(admin_client, f"/api/v1/nodes/{fleet['node'].pk}/upgrade/", raw)

    body = assert_problem(response, 400, "invalid")
    assert "duplicate key 'dry_run'" in body["errors"]["non_field_errors"][0]
    assert snapshot() == before


def test_a_key_given_twice_in_a_nested_object_is_invalid(admin_client, fleet):
    ids = f'"host_id": "{fleet["host"].pk}", "image_id": "{fleet["v1"].pk}"'
    raw = f'{{"name": "n", {ids}, "properties": {{"archive": "on", "archive": "off"}}}}'

    assert_problem(post_raw(admin_client, "/api/v1/nodes/", raw), 400, "invalid")


def test_a_property_value_past_the_limit_is_invalid_naming_its_key(admin_client, fleet, settings):
    settings.NODE_PROPERTY_VALUE_MAX_LENGTH = 1000
    before = snapshot()
    body = {"name": "n", "host_id": str(fleet["host"].pk), "image_id": str(fleet["v1"].pk)}

    response = admin_client.post("/api/v1/nodes/", {**body, "properties": {"archive": "x" * 1001}})

    problem = assert_problem(response, 400, "invalid")
    assert "archive" in problem["errors"]["properties"][0] and "1000" in problem["errors"]["properties"][0]
    assert snapshot() == before
    assert admin_client.post("/api/v1/nodes/", {**body, "properties": {"archive": "x" * 1000}}).status_code == 201


# --- Accept: application/problem+json ---------------------------------------------------------


def test_accepting_only_problem_json_gets_json_successes_and_problem_errors(admin_client, fleet):
    success = admin_client.get(f"/api/v1/nodes/{fleet['node'].pk}/", HTTP_ACCEPT=PROBLEM)
    assert success.status_code == 200
    assert success["Content-Type"] == "application/json"
    assert success.json()["name"] == "eth-1"

    missing = admin_client.get("/api/v1/nodes/00000000-0000-0000-0000-000000000000/", HTTP_ACCEPT=PROBLEM)
    assert_problem(missing, 404, "not_found")


def test_accepting_only_problem_json_without_credentials_is_401(anonymous):
    assert_problem(anonymous.get("/api/v1/nodes/", HTTP_ACCEPT=PROBLEM), 401, "not_authenticated")


@pytest.mark.parametrize(
    "path, accept",
    [
        ("/api/v1/schema/", "text/html"),  # the schema view's renderers are YAML and JSON
        ("/api/v1/docs/", "application/json"),  # the docs page's only renderer is HTML
        ("/api/v1/nodes/", "application/xml"),
    ],
)
def test_a_406_body_is_the_json_its_content_type_says(admin_client, path, accept):
    response = admin_client.get(path, HTTP_ACCEPT=accept)

    assert_problem(response, 406, "not_acceptable")
    json.loads(response.content)  # JSON, not YAML or HTML labelled problem+json


def test_the_metrics_refusal_is_plain_text_labelled_as_such(client, settings):
    settings.METRICS_TOKEN = "s3cret"

    response = client.get("/metrics")

    assert response.status_code == 403
    assert response["Content-Type"] == "text/plain; charset=utf-8"


# --- /healthz ----------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["10.1.2.3", "10.1.2.3:8000", "[::1]", "not a host"])
def test_healthz_answers_its_json_whatever_host_the_probe_sends(client, host):
    response = client.get("/healthz", HTTP_HOST=host)

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_healthz_refuses_a_post_with_405_not_a_csrf_403(fleet):
    from django.test import Client

    response = Client(enforce_csrf_checks=True).post("/healthz", HTTP_HOST="10.1.2.3")

    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"


def test_other_paths_still_check_the_host(client):
    assert client.get("/admin/login/", HTTP_HOST="10.1.2.3").status_code == 400


# --- paths typed slightly wrong ----------------------------------------------------------------


@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_a_missing_trailing_slash_is_404_naming_the_path_meant(admin_client, fleet, method):
    response = getattr(admin_client, method)("/api/v1/nodes")

    body = assert_problem(response, 404, "not_found")
    assert body["detail"] == "Nothing at /api/v1/nodes; did you mean /api/v1/nodes/?"


def test_a_missing_trailing_slash_on_an_action_names_the_path_meant(admin_client, fleet):
    node = fleet["node"].pk

    body = assert_problem(admin_client.post(f"/api/v1/nodes/{node}/upgrade", {}), 404, "not_found")

    assert body["detail"].endswith(f"did you mean /api/v1/nodes/{node}/upgrade/?")


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("path", ["//api/v1/hosts/", "/API/V1/HOSTS/", "/Api/v1/hosts", "///api//v1//hosts/", "/API"])
def test_api_paths_in_any_casing_or_with_doubled_slashes_are_problem_details(admin_client, settings, path, debug):
    settings.DEBUG = debug

    response = admin_client.get(f"http://testserver{path}")  # a full URL keeps a leading // a path

    body = assert_problem(response, 404, "not_found")
    if path != "/API":
        assert body["detail"].endswith("did you mean /api/v1/hosts/?")


def test_an_unknown_api_path_names_no_guess(admin_client):
    assert assert_problem(admin_client.get("/api/v1/widgets"), 404, "not_found")["detail"] == (
        "Nothing at /api/v1/widgets."
    )


def test_paths_outside_the_api_keep_djangos_html_404(admin_client):
    for path in ("/apiary/", "/no-such-page/"):
        response = admin_client.get(path)
        assert (response.status_code, response["Content-Type"][:9]) == (404, "text/html")
