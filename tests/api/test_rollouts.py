"""The rollouts API (§10): create (and dry run), read, nodes, controls; strict input,
permissions, invalid_state, problem details, constant queries."""

import pytest
from rest_framework.test import APIClient

from nodes.models import Node
from nodes.rollouts.models import Rollout, RolloutNode
from tests.api.conftest import token_client
from tests.factories import GiB, HostFactory, ImageFactory, TiB, UserFactory
from tests.nodes.rollouts.support import answer, running_node, work
from tests.support import fleet_snapshot

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"
ROLLOUT_ROLES = {
    "nobody": [],
    "viewer": ["nodes.view_rollout"],
    "creator": ["nodes.add_rollout", "nodes.upgrade_node"],
    "starter": ["nodes.add_rollout", "nodes.upgrade_node", "nodes.change_rollout", "nodes.view_rollout"],
    "controller": ["nodes.change_rollout"],
}


def client_of(role) -> APIClient:
    return token_client(UserFactory(permissions=ROLLOUT_ROLES[role]))


@pytest.fixture
def fleet():
    v1 = ImageFactory(protocol="eth", version="1.0", min_cpu_cores=2, min_memory_bytes=GiB, min_disk_bytes=GiB)
    v2 = ImageFactory(protocol="eth", version="2.0", min_cpu_cores=3, min_memory_bytes=GiB, min_disk_bytes=GiB)
    host = HostFactory(name="h1", cpu_cores=64, memory_bytes=64 * GiB, disk_bytes=TiB)
    nodes = [running_node(host=host, image=v1, name=f"n{i}") for i in range(1, 4)]
    return {"v1": v1, "v2": v2, "host": host, "nodes": nodes}


def test_create_answers_the_rollout_with_counts(fleet):
    response = client_of("starter").post(
        "/api/v1/rollouts/", {"image_id": str(fleet["v2"].pk), "batch_size": 2}, format="json"
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["state"] == "planned" and body["batches"] == 2 and body["current_batch"] == 0
    assert body["counts"] == {
        "pending": 3,
        "upgrading": 0,
        "succeeded": 0,
        "failed": 0,
        "rolled_back": 0,
        "refused": 0,
        "skipped": 0,
    }
    assert response["Location"].endswith(f"/api/v1/rollouts/{body['id']}/")
    assert body["image_id"] == str(fleet["v2"].pk) and body["started_at"] is None


def test_dry_run_answers_the_plan_and_writes_nothing(fleet):
    before = fleet_snapshot()

    response = client_of("creator").post(
        "/api/v1/rollouts/", {"image_id": str(fleet["v2"].pk), "dry_run": True}, format="json"
    )

    assert response.status_code == 200
    plan = response.json()
    assert plan["batches"] == 2 and plan["counts"]["pending"] == 3  # the canary, then 2
    assert plan["nodes"][0]["old"] == {"cpu_cores": 2, "memory_bytes": GiB, "disk_bytes": GiB}
    assert plan["nodes"][0]["new"]["cpu_cores"] == 3
    assert plan["nodes"][0]["fits"] == {"cpu_cores": True, "memory_bytes": True, "disk_bytes": True}
    assert plan["hosts"][0]["delta"]["cpu_cores"] == 3 and plan["hosts"][0]["selected"] == 3
    assert fleet_snapshot() == before and not Rollout.objects.exists()


def test_start_and_controls_move_the_state_and_refuse_with_invalid_state(fleet):
    created = (
        client_of("starter")
        .post(
            "/api/v1/rollouts/",
            {"image_id": str(fleet["v2"].pk), "start": True, "pause_after_canary": False},
            format="json",
        )
        .json()
    )
    url = f"/api/v1/rollouts/{created['id']}/"
    controller = client_of("controller")
    assert created["state"] == "running" and created["current_batch"] == 1

    assert controller.post(url + "pause/").json()["state"] == "paused"
    refused = controller.post(url + "pause/")
    assert refused.status_code == 409 and refused["Content-Type"] == PROBLEM
    assert refused.json()["code"] == "invalid_state" and refused.json()["state"] == "paused"
    assert controller.post(url + "resume/", {}, format="json").json()["state"] == "running"
    assert controller.post(url + "abort/").json()["state"] == "aborted"
    assert controller.post(url + "start/").json()["code"] == "invalid_state"


def test_resume_of_a_halted_rollout_needs_a_higher_max_failures(fleet):
    rollout_id = (
        client_of("starter")
        .post("/api/v1/rollouts/", {"image_id": str(fleet["v2"].pk), "start": True}, format="json")
        .json()["id"]
    )
    work()
    answer("failed")
    work()
    url = f"/api/v1/rollouts/{rollout_id}/"
    controller = client_of("controller")

    refused = controller.post(url + "resume/", {}, format="json")
    assert refused.status_code == 409 and refused.json()["state"] == "halted"
    assert "max_failures" in refused.json()["detail"]
    assert controller.post(url + "resume/", {"max_failures": "2"}, format="json").status_code == 400
    resumed = controller.post(url + "resume/", {"max_failures": 2}, format="json")
    assert resumed.status_code == 200 and resumed.json()["max_failures"] == 2


def test_reads_show_counts_and_nodes_cursor_paginated(fleet):
    client = client_of("starter")
    rollout_id = client.post(
        "/api/v1/rollouts/", {"image_id": str(fleet["v2"].pk), "start": True}, format="json"
    ).json()["id"]
    work()

    detail = client.get(f"/api/v1/rollouts/{rollout_id}/").json()
    assert detail["counts"]["upgrading"] == 1 and detail["counts"]["pending"] == 2
    listing = client.get("/api/v1/rollouts/").json()
    assert [r["id"] for r in listing["results"]] == [rollout_id]
    first = client.get(f"/api/v1/rollouts/{rollout_id}/nodes/?page_size=2").json()
    assert [n["node_name"] for n in first["results"]] == ["n1", "n2"]
    assert first["results"][0]["status"] == "upgrading" and first["results"][0]["batch"] == 1
    second = client.get(first["next"]).json()
    assert [n["node_name"] for n in second["results"]] == ["n3"]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": "5"}, "batch_size"),
        ({"canary": 1.5}, "canary"),
        ({"start": "true"}, "start"),
        ({"host_ids": [5]}, "host_ids"),
        ({"from_versions": "1.0"}, "from_versions"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_input_is_strict(fleet, body, field):
    response = client_of("starter").post("/api/v1/rollouts/", {"image_id": str(fleet["v2"].pk), **body}, format="json")

    assert response.status_code == 400 and response["Content-Type"] == PROBLEM
    assert response.json()["code"] == "invalid" and field in response.json()["errors"]


def test_ids_that_name_nothing_are_not_found(fleet):
    client = client_of("starter")
    missing = "00000000-0000-0000-0000-000000000000"

    assert client.post("/api/v1/rollouts/", {"image_id": missing}, format="json").status_code == 404
    body = {"image_id": str(fleet["v2"].pk), "node_ids": [missing]}
    assert client.post("/api/v1/rollouts/", body, format="json").json()["code"] == "not_found"
    assert client.get(f"/api/v1/rollouts/{missing}/").status_code == 404
    assert client.post(f"/api/v1/rollouts/{missing}/start/").status_code == 404


@pytest.mark.parametrize(
    "role, method, path, body, expected",
    [
        ("nobody", "get", "", None, 403),
        ("viewer", "get", "", None, 200),
        ("viewer", "post", "", {"dry_run": True}, 403),
        ("creator", "post", "", {"dry_run": True}, 200),
        ("creator", "post", "", {}, 201),
        ("creator", "post", "", {"start": True}, 403),
        ("starter", "post", "", {"start": True}, 201),
        ("viewer", "post", "start/", None, 403),
        ("controller", "post", "start/", None, 200),
    ],
)
def test_permissions(fleet, role, method, path, body, expected):
    rollout = Rollout.objects.create(image=fleet["v2"])
    url = "/api/v1/rollouts/" + (f"{rollout.pk}/{path}" if path else "")
    if body is not None:
        body = {"image_id": str(fleet["v2"].pk), "host_ids": [str(fleet["host"].pk)], **body}
        Rollout.objects.all().delete()

    response = getattr(client_of(role), method)(url, body, format="json")

    assert response.status_code == expected, response.content


def test_anonymous_is_401():
    assert APIClient().get("/api/v1/rollouts/").status_code == 401


def test_reads_run_a_constant_number_of_queries(fleet, django_assert_max_num_queries):
    client = client_of("starter")
    for _ in range(3):
        client.post("/api/v1/rollouts/", {"image_id": str(fleet["v2"].pk)}, format="json")
        Rollout.objects.update(state="aborted")
        RolloutNode.objects.update(holds_node=False)
    big_host = HostFactory(cpu_cores=10**6, memory_bytes=10**6 * GiB, disk_bytes=10**6 * GiB)
    for i in range(20):
        running_node(host=big_host, image=fleet["v1"], name=f"more-{i}")
    rollout_id = client.post("/api/v1/rollouts/", {"image_id": str(fleet["v2"].pk)}, format="json").json()["id"]

    with django_assert_max_num_queries(5):  # auth (token + user), rollout, counts
        assert client.get(f"/api/v1/rollouts/{rollout_id}/").status_code == 200
    with django_assert_max_num_queries(5):
        assert len(client.get("/api/v1/rollouts/").json()["results"]) == 4
    assert Node.objects.count() == 23
