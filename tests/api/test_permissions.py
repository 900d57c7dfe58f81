"""The permission matrix: anonymous, signed in without permission, with the view permissions,
with nodes.upgrade_node, with hosts.overcommit_host — for every endpoint; refusals leave
everything as it was."""

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from tests.api.conftest import assert_problem, snapshot, token_client
from tests.factories import ImageFactory, UserFactory

pytestmark = pytest.mark.django_db


def requests(fleet):
    """Every endpoint, as (name, method, path, body)."""
    node, v2 = fleet["node"], fleet["v2"]
    return {
        "hosts": ("get", "/api/v1/hosts/", None),
        "host": ("get", f"/api/v1/hosts/{fleet['host'].pk}/", None),
        "images": ("get", "/api/v1/images/", None),
        "image": ("get", f"/api/v1/images/{v2.pk}/", None),
        "nodes": ("get", "/api/v1/nodes/", None),
        "node": ("get", f"/api/v1/nodes/{node.pk}/", None),
        "create": (
            "post",
            "/api/v1/nodes/",
            {"name": "n", "host_id": str(fleet["host"].pk), "image_id": str(fleet["v1"].pk)},
        ),
        "create-force": (
            "post",
            "/api/v1/nodes/",
            {"name": "n", "host_id": str(fleet["host"].pk), "image_id": str(fleet["v1"].pk), "force": True},
        ),
        "add-image": ("post", "/api/v1/images/", {"protocol": "ethereum", "version": "1.1.0"}),
        "headroom": ("get", f"/api/v1/images/{v2.pk}/headroom/", None),
        "placed-create": ("post", "/api/v1/nodes/", {"name": "p", "image_id": str(fleet["v1"].pk)}),
        "placement-plan": ("post", "/api/v1/nodes/placement/", {"image_id": str(fleet["v1"].pk), "count": 2}),
        "add-host": ("post", "/api/v1/hosts/", {"name": "h2", "cpu_cores": 1, "memory_bytes": 1, "disk_bytes": 1}),
        "change-host": ("patch", f"/api/v1/hosts/{fleet['host'].pk}/", {"region": "eu-1"}),
        "delete": ("delete", f"/api/v1/nodes/{node.pk}/", None),
        "upgrade": ("post", f"/api/v1/nodes/{node.pk}/upgrade/", {"image_id": str(v2.pk)}),
        "plan": ("post", f"/api/v1/nodes/{node.pk}/upgrade/", {"image_id": str(v2.pk), "dry_run": True}),
        "upgrade-force": ("post", f"/api/v1/nodes/{node.pk}/upgrade/", {"image_id": str(v2.pk), "force": True}),
        "plan-force": (
            "post",
            f"/api/v1/nodes/{node.pk}/upgrade/",
            {"image_id": str(v2.pk), "force": True, "dry_run": True},
        ),
    }


READS = ["hosts", "host", "images", "image", "nodes", "node", "headroom"]
WRITES = [
    "create",
    "create-force",
    "add-image",
    "delete",
    "upgrade",
    "plan",
    "upgrade-force",
    "plan-force",
    "placed-create",
    "placement-plan",
    "add-host",
    "change-host",
]

#: role -> the requests it may make (any other: 403 signed in, 401 anonymous).
ALLOWED = {
    "nobody": [],
    "reader": READS,
    "upgrader": [*READS, "upgrade", "plan"],
    "overcommitter": [*READS, "upgrade", "plan", "upgrade-force", "plan-force"],
    "operator": [*READS, "create", "delete", "upgrade", "plan", "placed-create", "placement-plan"],
    "admin": [*READS, *WRITES],
}
SUCCESS = {"create": 201, "create-force": 201, "add-image": 201, "delete": 204, "placed-create": 201, "add-host": 201}


def call(client, fleet, name):
    method, path, body = requests(fleet)[name]
    return getattr(client, method)(path, body) if body is not None else getattr(client, method)(path)


@pytest.mark.parametrize("role, name", [(role, name) for role in ALLOWED for name in [*READS, *WRITES]])
def test_permission_matrix(as_role, fleet, role, name):
    client = as_role(role)
    before = snapshot()

    response = call(client, fleet, name)

    if name in ALLOWED[role]:
        assert response.status_code == SUCCESS.get(name, 200), response.content
    else:
        assert_problem(response, 403, "permission_denied")
        assert snapshot() == before


@pytest.mark.parametrize("name", [*READS, "create", "add-image", "delete", "upgrade", "plan", "upgrade-force"])
def test_anonymous_gets_401_with_a_token_challenge_everywhere(fleet, name):
    before = snapshot()

    response = call(APIClient(), fleet, name)

    assert_problem(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Token, Bearer"
    assert snapshot() == before


@pytest.mark.parametrize(
    "header",
    ["Token 0123456789abcdef0123456789abcdef01234567", "Token \x00", "Token", "Bearer x", "Bearer nfu_" + "A" * 43],
)
def test_a_bad_token_is_401(fleet, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    response = client.get("/api/v1/nodes/")

    body = assert_problem(response, 401, "not_authenticated")
    assert "token" in body["detail"].lower()


@pytest.mark.parametrize(
    "role, name",
    [("nobody", "hosts"), ("nobody", "node"), ("upgrader-without-view", "nodes"), ("upgrader-without-view", "image")],
)
def test_reads_without_the_view_permission_are_403_naming_it(fleet, role, name):
    permissions = {"nobody": [], "upgrader-without-view": ["nodes.upgrade_node"]}[role]
    client = token_client(UserFactory(permissions=permissions))

    body = assert_problem(call(client, fleet, name), 403, "permission_denied")

    model = {"hosts": "hosts.view_host", "node": "nodes.view_node", "nodes": "nodes.view_node"}
    assert model.get(name, "nodes.view_image") in body["detail"]


def test_the_change_permission_reads_too_as_in_the_admin(fleet):
    client = token_client(UserFactory(permissions=["hosts.change_host", "nodes.change_node", "nodes.change_image"]))

    for name in READS:
        assert call(client, fleet, name).status_code == 200, name


def test_an_inactive_users_token_is_401(as_role, fleet):
    client = as_role("admin")
    get_user_model().objects.update(is_active=False)

    assert_problem(client.get("/api/v1/nodes/"), 401, "not_authenticated")


def test_force_without_overcommit_is_403_even_when_the_change_fits(as_role, fleet):
    small = ImageFactory(protocol="ethereum", min_cpu_cores=1)
    before = snapshot()

    body = assert_problem(
        as_role("operator").post(
            f"/api/v1/nodes/{fleet['other'].pk}/upgrade/", {"image_id": str(small.pk), "force": True}
        ),
        403,
        "permission_denied",
    )

    assert "hosts.overcommit_host" in body["detail"]
    assert snapshot() == before


def test_session_authentication_reads_and_needs_csrf_to_write(fleet):
    user = UserFactory(permissions=["nodes.view_node", "nodes.upgrade_node"])
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    before = snapshot()

    assert client.get("/api/v1/nodes/").status_code == 200
    body = assert_problem(
        client.post(f"/api/v1/nodes/{fleet['node'].pk}/upgrade/", {"image_id": str(fleet["v2"].pk)}),
        403,
        "permission_denied",
    )
    assert "CSRF" in body["detail"]
    assert snapshot() == before


def test_permission_is_checked_before_existence(as_role, fleet):
    missing = "00000000-0000-0000-0000-000000000000"

    assert_problem(
        as_role("reader").post(f"/api/v1/nodes/{missing}/upgrade/", {"image_id": missing}), 403, "permission_denied"
    )
    assert_problem(as_role("reader").delete(f"/api/v1/nodes/{missing}/"), 403, "permission_denied")


def test_a_malformed_body_is_refused_before_the_force_permission(as_role, fleet):
    response = as_role("upgrader").post(f"/api/v1/nodes/{fleet['node'].pk}/upgrade/", {"image_id": 5, "force": True})

    assert_problem(response, 400, "invalid")
