"""The OpenAPI schema: generated without warnings, valid, public, documenting every error as
problem details; the docs page works offline (drf-spectacular-sidecar's files, no CDN)."""

import os
import re
import subprocess
import sys

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders

pytestmark = pytest.mark.django_db


def test_the_schema_generates_without_warnings_and_validates(tmp_path):
    out = tmp_path / "schema.yaml"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings_test"}

    result = subprocess.run(
        [sys.executable, "manage.py", "spectacular", "--validate", "--fail-on-warn", "--file", str(out)],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr and "Error" not in result.stderr, result.stderr
    assert "/api/v1/nodes/{id}/upgrade/" in out.read_text()
    assert "ImageCreated" in out.read_text()


def test_the_schema_is_public_even_with_a_bad_token(client):
    response = client.get("/api/v1/schema/?format=json", HTTP_AUTHORIZATION="Token nope")

    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert set(schema["paths"]) == {
        "/api/v1/hosts/",
        "/api/v1/hosts/{id}/",
        "/api/v1/images/",
        "/api/v1/images/{id}/",
        "/api/v1/images/{id}/headroom/",
        "/api/v1/nodes/",
        "/api/v1/nodes/placement/",
        "/api/v1/nodes/{id}/",
        "/api/v1/nodes/{id}/upgrade/",
        "/api/v1/commands/{id}/cancel/",
        "/api/v1/fleet/",
        "/api/v1/agent/commands/",
        "/api/v1/agent/commands/{id}/ack/",
        "/api/v1/agent/commands/{id}/result/",
        "/api/v1/auth/tokens/",
        "/api/v1/auth/tokens/{id}/",
        "/api/v1/auth/tokens/revoke-all/",
        "/api/v1/rollouts/",
        "/api/v1/rollouts/{id}/",
        "/api/v1/rollouts/{id}/nodes/",
        "/api/v1/rollouts/{id}/start/",
        "/api/v1/rollouts/{id}/pause/",
        "/api/v1/rollouts/{id}/resume/",
        "/api/v1/rollouts/{id}/abort/",
    }


def test_every_operation_documents_its_errors_as_problem_details(client):
    schema = client.get("/api/v1/schema/?format=json").json()
    problem_ref = {"$ref": "#/components/schemas/Problem"}

    for path, item in schema["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert {"401", "503", "default"} <= responses.keys(), (method, path)
            for status, response in responses.items():
                if status.startswith(("4", "5")) or status == "default":
                    assert response["content"] == {"application/problem+json": {"schema": problem_ref}}
    upgrade = schema["paths"]["/api/v1/nodes/{id}/upgrade/"]["post"]["responses"]
    assert {"400", "403", "404", "409", "422"} <= upgrade.keys()
    assert {"type", "title", "status", "detail", "code"} == set(schema["components"]["schemas"]["Problem"]["required"])


def test_request_bodies_refuse_unknown_properties_and_type_ids_as_uuid_strings(client):
    schemas = client.get("/api/v1/schema/?format=json").json()["components"]["schemas"]

    for name in ("NodeCreate", "NodeUpgrade", "HostWrite", "HostChange", "PlacementPlanInput", "PlacementInput"):
        assert schemas[name]["additionalProperties"] is False, name
    assert schemas["NodeUpgrade"]["properties"]["image_id"] == {"type": "string", "format": "uuid"}
    assert schemas["NodeUpgrade"]["properties"]["dry_run"]["type"] == "boolean"
    assert schemas["Host"]["properties"]["node_memory_bytes"]["format"] == "int64"
    # §11: host_id is optional on create; counters are never host input.
    assert "host_id" not in schemas["NodeCreate"].get("required", [])
    assert not {"node_count", "node_cpu_cores", "allocatable_cpu_cores"} & set(schemas["HostWrite"]["properties"])
    assert set(schemas["HostWrite"]["required"]) == {"name", "cpu_cores", "memory_bytes", "disk_bytes"}
    assert "required" not in schemas["HostChange"]  # a PATCH names what it changes


def test_the_docs_page_is_served_from_local_static_files(client):
    response = client.get("/api/v1/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    assert any("swagger-ui-bundle.js" in asset for asset in assets)
    assert not re.search(r"https?://", html.replace("http://testserver", ""))
    for asset in assets:
        if asset.startswith(settings.STATIC_URL) or asset.startswith("/" + settings.STATIC_URL):
            path = asset.split(settings.STATIC_URL, 1)[1]
            assert finders.find(path), f"{asset} is not a static file of the project"
    # Swagger UI's setup is a script of its own (no inline script under the CSP): it loads the schema.
    setup = client.get("/api/v1/docs/?script=")
    assert setup.status_code == 200 and "/api/v1/schema/" in setup.content.decode()
