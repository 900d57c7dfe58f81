"""Auto-upgrade (§10): the flag (API create and PATCH, the one field changed in place) and the
rollout an added image makes for the flagged nodes it is newer for (PEP 440, same major)."""

import pytest
from django.test import override_settings

from nodes.models import Node
from nodes.rollouts.auto import auto_upgrade_candidates, nodes_auto_upgrade_set, rollout_auto_create
from nodes.rollouts.models import Rollout, RolloutNode
from tests.api.conftest import token_client
from tests.factories import GiB, HostFactory, ImageFactory, TiB, UserFactory
from tests.nodes.rollouts.support import running_node

pytestmark = pytest.mark.django_db


def image(version, protocol="eth"):
    return ImageFactory(protocol=protocol, version=version, min_cpu_cores=1, min_memory_bytes=GiB, min_disk_bytes=GiB)


@pytest.fixture
def host():
    return HostFactory(cpu_cores=64, memory_bytes=64 * GiB, disk_bytes=TiB)


def flagged(host, img, name):
    node = running_node(host=host, image=img, name=name)
    nodes_auto_upgrade_set(node_ids=[node.pk], auto_upgrade=True)
    return node


def test_a_newer_image_of_the_same_major_rolls_out_to_flagged_nodes(host):
    v19, v110, v2 = image("1.9"), image("1.10.0rc1"), image("2.0")
    a, b = flagged(host, v19, "a"), flagged(host, v110, "b")
    running_node(host=host, image=v19, name="not-flagged")
    flagged(host, v2, "other-major")
    flagged(host, image("0.1", protocol="sol"), "other-protocol")

    rollout = rollout_auto_create(image=image("1.10"))  # 1.10 > 1.10.0rc1 > 1.9 (not by string order)

    assert rollout.state == "planned" and rollout.auto
    assert set(RolloutNode.objects.filter(rollout=rollout).values_list("node_id", flat=True)) == {a.pk, b.pk}


def test_no_flagged_older_node_no_rollout(host):
    v1 = image("1.0")
    flagged(host, image("1.5"), "newer")
    running_node(host=host, image=v1, name="unflagged")

    assert rollout_auto_create(image=image("1.2")) is None
    assert auto_upgrade_candidates(image("not a version")) == []
    assert not Rollout.objects.exists()


@override_settings(AUTO_UPGRADE_START=True)
def test_started_at_once_with_auto_upgrade_start(host):
    flagged(host, image("1.0"), "a")

    assert rollout_auto_create(image=image("1.1")).state == "running"


def api(perms):
    return token_client(UserFactory(permissions=perms))


def test_api_create_takes_auto_upgrade_and_patch_changes_only_it(host):
    img = image("1.0")
    client = api(["nodes.add_node", "nodes.change_node"])

    created = client.post(
        "/api/v1/nodes/", {"name": "x", "host_id": str(host.pk), "image_id": str(img.pk), "auto_upgrade": True}
    )
    assert created.status_code == 201 and created.json()["auto_upgrade"] is True
    url = f"/api/v1/nodes/{created.json()['id']}/"

    patched = client.patch(url, {"auto_upgrade": False}, format="json")
    assert patched.status_code == 200 and patched.json()["auto_upgrade"] is False
    assert Node.objects.get(name="x").auto_upgrade is False
    for body in ({"name": "y"}, {"auto_upgrade": False, "name": "y"}, {"auto_upgrade": "false"}, {}):
        refused = client.patch(url, body, format="json")
        assert refused.status_code == 400 and refused.json()["code"] == "invalid", body
    assert client.put(url, {"auto_upgrade": True}, format="json").status_code == 405
    assert api(["nodes.add_node"]).patch(url, {"auto_upgrade": True}, format="json").status_code == 403
