"""POST /api/v1/images/: an image with its properties, strict input, `nodes.add_image`, and the
auto-upgrade rollout it makes for the auto_upgrade nodes it is newer for (§10)."""

import pytest
from django.test import override_settings

from nodes.models import Image, ImageProperty
from nodes.rollouts.auto import nodes_auto_upgrade_set
from nodes.rollouts.models import Rollout, RolloutNode
from tests.api.conftest import assert_problem, token_client
from tests.factories import GiB, UserFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/images/"
BIGINT_MAX = 2**63 - 1


@pytest.fixture
def adder():
    return token_client(UserFactory(permissions=["nodes.add_image"]))


def body(**fields):
    return {"protocol": "ethereum", "version": "1.1.0", **fields}


def test_an_image_is_added_with_its_properties_as_get_shows_it(adder, admin_client):
    archive = {"key": "archive", "default_value": "off", "add_disk_bytes": 1024 * GiB, "add_cpu_cores": None}
    response = adder.post(
        URL,
        body(min_cpu_cores=2, min_memory_bytes=8 * GiB, properties=[archive, {"key": "mode", "default_value": ""}]),
        format="json",
    )

    assert response.status_code == 201, response.content
    created = response.json()
    assert created.pop("auto_rollout_id") is None
    assert response["Location"].endswith(f"/api/v1/images/{created['id']}/")
    assert admin_client.get(f"{URL}{created['id']}/").json() == created
    assert created["min_cpu_cores"] == 2 and created["min_disk_bytes"] == 0
    assert [p["key"] for p in created["properties"]] == ["archive", "mode"]
    assert created["properties"][0] == {**archive, "add_memory_bytes": None}


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"version": 1}, "version"),
        ({"protocol": ""}, "protocol"),
        ({"version": "1.0\n2.0"}, "version"),
        ({"min_cpu_cores": -1}, "min_cpu_cores"),
        ({"min_memory_bytes": BIGINT_MAX + 1}, "min_memory_bytes"),
        ({"min_disk_bytes": "5"}, "min_disk_bytes"),
        ({"min_disk_bytes": True}, "min_disk_bytes"),
        ({"colour": "blue"}, "colour"),
        ({"properties": [{"key": "a", "default_value": "x", "size": 1}]}, "properties"),
        ({"properties": [{"key": "a"}]}, "properties"),
        ({"properties": [{"key": "a", "default_value": "x", "add_cpu_cores": -BIGINT_MAX - 1}]}, "properties"),
        ({"properties": [{"key": "a", "default_value": "\x1b[2J"}]}, "properties"),
        ({"properties": [{"key": "a", "default_value": "x"}, {"key": "a", "default_value": "y"}]}, "properties"),
        ({"properties": {"a": "x"}}, "properties"),
    ],
)
def test_bad_input_is_400_invalid_and_adds_nothing(adder, fields, field):
    response = adder.post(URL, body(**fields), format="json")

    problem = assert_problem(response, 400, "invalid")
    assert field in problem["errors"], problem
    assert not Image.objects.exists() and not ImageProperty.objects.exists()


def test_a_taken_protocol_and_version_is_400_invalid(adder, fleet):
    response = adder.post(URL, body(version="1.0.0"), format="json")

    problem = assert_problem(response, 400, "invalid")
    assert "ethereum@1.0.0 already exists" in problem["detail"] and "version" in problem["errors"]
    assert Image.objects.filter(protocol="ethereum", version="1.0.0").count() == 1


def test_adding_needs_nodes_add_image(as_role, anonymous, fleet):
    before = Image.objects.count()

    refused = as_role("operator").post(URL, body(), format="json")
    assert "nodes.add_image" in assert_problem(refused, 403, "permission_denied")["detail"]
    assert_problem(anonymous.post(URL, body(), format="json"), 401, "not_authenticated")
    assert Image.objects.count() == before


def flag_all(fleet):
    nodes_auto_upgrade_set(node_ids=[fleet["node"].pk, fleet["other"].pk], auto_upgrade=True)


def test_a_newer_image_rolls_out_to_auto_upgrade_nodes_planned(adder, fleet):
    flag_all(fleet)

    created = adder.post(URL, body(version="1.10.0"), format="json").json()

    rollout = Rollout.objects.get(pk=created["auto_rollout_id"])
    assert rollout.auto and rollout.state == "planned" and str(rollout.image_id) == created["id"]
    nodes = set(RolloutNode.objects.filter(rollout=rollout).values_list("node_id", flat=True))
    assert nodes == {fleet["node"].pk, fleet["other"].pk}


@override_settings(AUTO_UPGRADE_START=True)
def test_with_auto_upgrade_start_the_rollout_starts_at_once(adder, fleet):
    flag_all(fleet)

    created = adder.post(URL, body(version="1.1.0"), format="json").json()

    assert Rollout.objects.get(pk=created["auto_rollout_id"]).state == "running"


@pytest.mark.parametrize("version", ["0.9.0", "1.0.0rc1", "2.1.0", "not a version"])
def test_no_rollout_for_an_older_other_major_or_unparseable_version(adder, fleet, version):
    flag_all(fleet)

    response = adder.post(URL, body(version=version), format="json")

    assert response.status_code == 201, response.content
    assert response.json()["auto_rollout_id"] is None and not Rollout.objects.exists()
