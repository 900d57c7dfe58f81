"""Fixtures of the API tests: clients signed in with a token for each permission set, a small
fleet, and a snapshot of everything a refusal must leave as it was."""

import socket
from contextlib import contextmanager

import pytest
from django.db import connection
from rest_framework.test import APIClient

from hosts.agent_tokens import agent_token_issue
from tests.factories import GiB, HostFactory, ImageFactory, ImagePropertyFactory, UserFactory, place_node
from tests.support import fleet_snapshot as snapshot  # noqa: F401 (the API tests' name)
from tokens.services import token_create

PROBLEM = "application/problem+json"

#: What a reader holds: the view permissions of the three models the API reads (§5).
READ_PERMISSIONS = ["hosts.view_host", "nodes.view_image", "nodes.view_node"]

#: The permission matrix of §5: who may read, write, upgrade and force.
ROLES = {
    "nobody": [],
    "reader": READ_PERMISSIONS,
    "upgrader": [*READ_PERMISSIONS, "nodes.upgrade_node"],
    "overcommitter": [*READ_PERMISSIONS, "nodes.upgrade_node", "hosts.overcommit_host"],
    "operator": [*READ_PERMISSIONS, "nodes.add_node", "nodes.delete_node", "nodes.upgrade_node"],
    "admin": [
        *READ_PERMISSIONS,
        "nodes.add_node",
        "nodes.delete_node",
        "nodes.upgrade_node",
        "hosts.overcommit_host",
        "nodes.add_image",
        "hosts.add_host",
        "hosts.change_host",
    ],
}


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_create(user=user)[1]}")
    return client


def agent_client(host) -> APIClient:
    """An APIClient speaking for `host`'s agent (a new agent token)."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {agent_token_issue(host=host, rotate=True)}")
    return client


@pytest.fixture
def anonymous():
    return APIClient()


@pytest.fixture
def as_role(db):
    """as_role("upgrader") -> an APIClient authenticated by token as a user with that role."""
    return lambda role: token_client(UserFactory(permissions=ROLES[role]))


@pytest.fixture
def admin_client(as_role):
    return as_role("admin")


@pytest.fixture
def fleet(db):
    """One host with room, two ethereum images and one bitcoin image, two nodes on v1."""
    host = HostFactory(name="host-a", cpu_cores=16, memory_bytes=64 * GiB, disk_bytes=4096 * GiB)
    v1 = ImageFactory(protocol="ethereum", version="1.0.0", min_cpu_cores=2, min_memory_bytes=8 * GiB)
    v2 = ImageFactory(protocol="ethereum", version="2.0.0", min_cpu_cores=4, min_memory_bytes=16 * GiB)
    ImagePropertyFactory(image=v1, key="archive", default_value="off", add_disk_bytes=1024 * GiB)
    ImagePropertyFactory(image=v2, key="archive", default_value="off", add_disk_bytes=2048 * GiB)
    btc = ImageFactory(protocol="bitcoin", version="27.0", min_cpu_cores=1, min_memory_bytes=4 * GiB)
    node = place_node(host=host, image=v1, name="eth-1", properties={"archive": "on"})
    other = place_node(host=host, image=v1, name="eth-2")
    host.refresh_from_db()
    return {"host": host, "v1": v1, "v2": v2, "btc": btc, "node": node, "other": other}


def assert_problem(response, status: int, code: str) -> dict:
    """The response is problem details (RFC 9457) with this status and code; returns its body."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["code"] == code, body
    assert body["status"] == status
    assert body["type"] == f"/problems/{code}"
    assert body["title"] and body["detail"]
    return body


@contextmanager
def database_unreachable():
    """While inside, this thread's connection points at a closed port (as if PostgreSQL were down)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict.update(HOST="127.0.0.1", PORT=str(closed_port))
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.update(saved)
