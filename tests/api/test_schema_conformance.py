"""Real answers of every operation, successes and refusals alike, validated against the schema
the API serves, by a validator that shares nothing with drf-spectacular or schemathesis
(openapi-core). A generated client trusts that schema: what it says is what the API sends."""

import json
import re
import uuid
from urllib.parse import urlencode

import pytest
from django.urls import resolve
from openapi_core import Config, OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from rest_framework.test import APIClient

from nodes.models import Command, Image, Node
from tests.api.conftest import agent_client, token_client
from tests.factories import GiB, ImageFactory, ImagePropertyFactory, UserFactory

pytestmark = pytest.mark.django_db

BIGINT_MAX = 2**63 - 1


class Tour:
    """Sends requests through Django's test client and validates each answer against the schema;
    remembers which operations answered with a success."""

    def __init__(self, client):
        schema = client.get("/api/v1/schema/?format=json").json()
        # Problem details are JSON under their own media type (RFC 9457).
        config = Config(extra_media_type_deserializers={"application/problem+json": json.loads})
        self.api = OpenAPI.from_dict(schema, config=config)
        self.operations = {
            (method, path) for path, item in schema["paths"].items() for method in item if method != "parameters"
        }
        self.succeeded: set[tuple[str, str]] = set()
        self.statuses: list[tuple[str, str, int]] = []

    def call(self, client, method: str, path: str, body: dict | None = None, query: dict | None = None, status=None):
        url = f"{path}?{urlencode(query)}" if query else path
        raw = json.dumps(body).encode() if body is not None else None
        response = client.generic(method.upper(), url, raw or b"", content_type="application/json")
        if status is not None:
            assert response.status_code == status, (method, url, response.status_code, response.content[:300])
        request = MockRequest("http://testserver", method.lower(), path, args=query or {}, data=raw)
        answer = MockResponse(
            response.content,
            status_code=response.status_code,
            headers=dict(response.headers),
            content_type=response.get("Content-Type", ""),
        )
        self.api.validate_response(request, answer)  # raises, naming what differs from the schema
        operation = (method.lower(), re.sub(r"<[^>]+>", "{id}", "/" + resolve(path).route))
        self.statuses.append((*operation, response.status_code))
        if response.status_code < 300:
            self.succeeded.add(operation)
        return response


def test_every_operation_answers_what_the_served_schema_says(client, admin_client, as_role, anonymous, fleet):
    tour = Tour(client)
    host, node, other, v1, v2, btc = (fleet[k] for k in ("host", "node", "other", "v1", "v2", "btc"))
    missing = str(uuid.uuid4())

    # Reads, with their filters and pagination, and their refusals.
    tour.call(admin_client, "get", "/api/v1/hosts/", status=200)
    tour.call(admin_client, "get", "/api/v1/hosts/", query={"page_size": 1}, status=200)
    tour.call(admin_client, "get", f"/api/v1/hosts/{host.pk}/", status=200)
    tour.call(admin_client, "get", f"/api/v1/hosts/{missing}/", status=404)
    tour.call(admin_client, "get", "/api/v1/images/", status=200)
    tour.call(admin_client, "get", f"/api/v1/images/{v1.pk}/", status=200)
    added = {"protocol": "ethereum", "version": "1.1.0", "properties": [{"key": "archive", "default_value": "off"}]}
    tour.call(admin_client, "post", "/api/v1/images/", added, status=201)
    tour.call(admin_client, "post", "/api/v1/images/", added, status=400)  # protocol@version taken
    tour.call(as_role("operator"), "post", "/api/v1/images/", {**added, "version": "1.2.0"}, status=403)
    tour.call(admin_client, "get", "/api/v1/nodes/", query={"host": str(host.pk), "protocol": "ethereum"}, status=200)
    tour.call(admin_client, "get", "/api/v1/nodes/", query={"host_id": str(host.pk)}, status=400)
    tour.call(admin_client, "get", "/api/v1/nodes/", query={"cursor": "bogus"}, status=400)
    tour.call(admin_client, "get", f"/api/v1/nodes/{node.pk}/", status=200)
    tour.call(anonymous, "get", "/api/v1/nodes/", status=401)
    tour.call(as_role("nobody"), "get", "/api/v1/hosts/", status=403)  # no hosts.view_host

    # Upgrades: every kind of dry run, then applied, then refused.
    upgrade = f"/api/v1/nodes/{node.pk}/upgrade/"
    huge = ImageFactory(protocol="ethereum", min_memory_bytes=100 * GiB)
    past_64_bits = ImageFactory(protocol="ethereum", min_memory_bytes=BIGINT_MAX)
    ImagePropertyFactory(image=past_64_bits, key="archive", default_value="off", add_memory_bytes=1)
    broken = ImageFactory(protocol="ethereum")
    Image.objects.filter(pk=broken.pk).update(min_disk_bytes=-5)
    for target in (v2, huge, btc, past_64_bits, broken, v1):
        tour.call(admin_client, "post", upgrade, {"image_id": str(target.pk), "dry_run": True}, status=200)
    tour.call(as_role("upgrader"), "post", upgrade, {"image_id": str(v2.pk), "force": True}, status=403)
    tour.call(admin_client, "post", upgrade, {"image_id": str(v2.pk), "colour": "blue"}, status=400)
    tour.call(admin_client, "post", upgrade, {"image_id": str(btc.pk)}, status=422)
    tour.call(admin_client, "post", upgrade, {"image_id": str(huge.pk)}, status=409)
    tour.call(admin_client, "post", upgrade, {"image_id": str(v2.pk)}, status=200)
    tour.call(admin_client, "post", f"/api/v1/nodes/{missing}/upgrade/", {"image_id": str(v2.pk)}, status=404)

    # Create and delete.
    created = {"name": "tour-1", "host_id": str(host.pk), "image_id": str(v1.pk), "properties": {"archive": "off"}}
    tour.call(admin_client, "post", "/api/v1/nodes/", created, status=201)
    tour.call(admin_client, "post", "/api/v1/nodes/", created, status=400)  # the name is taken
    tour.call(
        admin_client,
        "post",
        "/api/v1/nodes/",
        {**created, "name": "t2", "image_id": str(huge.pk), "properties": {}},
        status=409,
    )
    tour.call(admin_client, "post", "/api/v1/nodes/", {**created, "name": "t3", "host_id": missing}, status=404)
    # Placement (§11): a placed create, its refusals, the plan, headroom and host writes.
    placed = {"name": "tour-placed", "image_id": str(v1.pk), "placement": {"strategy": "spread", "region": None}}
    tour.call(admin_client, "post", "/api/v1/nodes/", placed, status=201)
    tour.call(admin_client, "post", "/api/v1/nodes/", {**placed, "name": "t4", "host_id": str(host.pk)}, status=400)
    tour.call(admin_client, "post", "/api/v1/nodes/", {"name": "t5", "image_id": str(huge.pk)}, status=409)
    plan = "/api/v1/nodes/placement/"
    tour.call(admin_client, "post", plan, {"image_id": str(v1.pk), "count": 3}, status=200)
    tour.call(admin_client, "post", plan, {"image_id": str(huge.pk)}, status=200)  # with its error
    tour.call(admin_client, "post", plan, {"image_id": str(v1.pk), "count": 0}, status=400)
    tour.call(admin_client, "post", plan, {"image_id": missing}, status=404)
    tour.call(as_role("reader"), "post", plan, {"image_id": str(v1.pk)}, status=403)
    tour.call(admin_client, "get", f"/api/v1/images/{v1.pk}/headroom/", status=200)
    tour.call(admin_client, "get", f"/api/v1/images/{v1.pk}/headroom/", query={"region": ""}, status=200)
    tour.call(admin_client, "get", f"/api/v1/images/{missing}/headroom/", status=404)
    new_host = {"name": "tour-host", "cpu_cores": 8, "memory_bytes": 8 * GiB, "disk_bytes": 100 * GiB}
    made = tour.call(admin_client, "post", "/api/v1/hosts/", new_host, status=201).json()
    tour.call(admin_client, "post", "/api/v1/hosts/", new_host, status=400)  # the name is taken
    tour.call(as_role("reader"), "post", "/api/v1/hosts/", {**new_host, "name": "x"}, status=403)
    tour.call(admin_client, "patch", f"/api/v1/hosts/{host.pk}/", {"reserved_memory_bytes": 60 * GiB}, status=200)
    tour.call(admin_client, "patch", f"/api/v1/hosts/{made['id']}/", {"node_count": 1}, status=400)
    tour.call(admin_client, "patch", f"/api/v1/hosts/{missing}/", {"region": "x"}, status=404)

    tour.call(as_role("reader"), "delete", f"/api/v1/nodes/{other.pk}/", status=403)
    tour.call(admin_client, "delete", f"/api/v1/nodes/{other.pk}/", status=204)
    tour.call(admin_client, "delete", f"/api/v1/nodes/{other.pk}/", status=404)

    # The host's agent (§9): poll, ack and report the upgrade applied above; their refusals.
    agent = agent_client(host)
    upgrade_command = Command.objects.get(node_id=node.pk, status="pending")
    commands = "/api/v1/agent/commands/"
    tour.call(agent, "get", commands, status=200)
    tour.call(anonymous, "get", commands, status=401)
    tour.call(admin_client, "get", commands, status=401)
    tour.call(agent, "post", f"{commands}{upgrade_command.pk}/ack/", status=200)
    tour.call(agent, "post", f"{commands}999999999/ack/", status=404)
    result = f"{commands}{upgrade_command.pk}/result/"
    tour.call(agent, "post", result, {"outcome": "retry_later"}, status=400)
    tour.call(agent, "post", result, {"outcome": "succeeded", "message": "done"}, status=200)
    tour.call(agent, "post", result, {"outcome": "failed"}, status=409)

    # Support cancels the open create of the node made above.
    create_command = Command.objects.get(node_id=Node.objects.get(name="tour-1").pk, status="pending")
    cancel = f"/api/v1/commands/{create_command.pk}/cancel/"
    canceller = token_client(UserFactory(permissions=["nodes.cancel_command"]))
    tour.call(as_role("reader"), "post", cancel, status=403)
    tour.call(canceller, "post", cancel, status=200)
    tour.call(canceller, "post", cancel, status=409)
    tour.call(canceller, "post", "/api/v1/commands/999999999/cancel/", status=404)

    # Rollouts (§10) and the one field of a node changed in place.
    roller = token_client(
        UserFactory(
            permissions=[
                "nodes.view_rollout",
                "nodes.add_rollout",
                "nodes.change_rollout",
                "nodes.upgrade_node",
                "nodes.change_node",
            ]
        )
    )
    tour.call(roller, "patch", f"/api/v1/nodes/{node.pk}/", {"auto_upgrade": True}, status=200)
    tour.call(roller, "patch", f"/api/v1/nodes/{node.pk}/", {"name": "renamed"}, status=400)
    tour.call(as_role("reader"), "patch", f"/api/v1/nodes/{node.pk}/", {"auto_upgrade": True}, status=403)
    rollouts = "/api/v1/rollouts/"
    tour.call(roller, "post", rollouts, {"image_id": str(v1.pk), "dry_run": True}, status=200)
    tour.call(roller, "post", rollouts, {"image_id": str(v1.pk), "batch_size": 0}, status=400)
    tour.call(roller, "post", rollouts, {"image_id": missing}, status=404)
    rollout = tour.call(roller, "post", rollouts, {"image_id": str(v1.pk)}, status=201).json()["id"]
    tour.call(roller, "get", rollouts, status=200)
    tour.call(roller, "get", f"{rollouts}{rollout}/", status=200)
    tour.call(roller, "get", f"{rollouts}{missing}/", status=404)
    tour.call(roller, "get", f"{rollouts}{rollout}/nodes/", status=200)
    tour.call(roller, "post", f"{rollouts}{rollout}/pause/", status=409)
    tour.call(roller, "post", f"{rollouts}{rollout}/start/", status=200)
    tour.call(roller, "post", f"{rollouts}{rollout}/pause/", status=200)
    tour.call(roller, "post", f"{rollouts}{rollout}/resume/", {"max_failures": "2"}, status=400)
    tour.call(roller, "post", f"{rollouts}{rollout}/resume/", {}, status=200)
    tour.call(roller, "post", f"{rollouts}{rollout}/abort/", status=200)
    tour.call(as_role("reader"), "get", rollouts, status=403)

    # The fleet at a glance (§12).
    tour.call(as_role("reader"), "get", "/api/v1/fleet/", status=200)  # commands and rollouts null
    tour.call(admin_client, "get", "/api/v1/fleet/", status=200)  # every panel
    tour.call(roller, "get", "/api/v1/fleet/", status=403)  # no hosts.view_host
    tour.call(anonymous, "get", "/api/v1/fleet/", status=401)

    # The caller's own API tokens: make, list, revoke one, revoke all, and their refusals.
    # Tokens are made from a session only (tokens.api.InteractiveSession); a token is refused.
    person = UserFactory(permissions=["hosts.view_host", "nodes.view_image", "nodes.view_node"])
    signed_in = APIClient()
    signed_in.force_login(person)
    me = token_client(person)
    made = tour.call(signed_in, "post", "/api/v1/auth/tokens/", {"name": "tour"}, status=201).json()
    tour.call(signed_in, "post", "/api/v1/auth/tokens/", {"ttl": 1}, status=400)
    tour.call(me, "post", "/api/v1/auth/tokens/", {"name": "minted-by-a-token"}, status=403)
    tour.call(me, "get", "/api/v1/auth/tokens/", status=200)
    tour.call(me, "delete", f"/api/v1/auth/tokens/{missing}/", status=404)
    tour.call(me, "delete", f"/api/v1/auth/tokens/{made['id']}/", status=204)
    tour.call(anonymous, "get", "/api/v1/auth/tokens/", status=401)
    tour.call(me, "post", "/api/v1/auth/tokens/revoke-all/", status=200)
    tour.call(me, "get", "/api/v1/auth/tokens/", status=401)

    assert tour.succeeded == tour.operations, (
        f"operations no request of this tour answered with a success: {sorted(tour.operations - tour.succeeded)} — "
        "add one (and its refusals) to the tour"
    )
