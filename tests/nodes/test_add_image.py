"""image_create and `manage.py add_image` as an operator runs it: the image with its properties,
the auto-upgrade rollout (planned, or running with AUTO_UPGRADE_START), exit 0 / 1 / 2."""

import argparse
import json
import subprocess
import sys

import pytest

from config.errors import InvalidInput
from nodes.images import image_create
from nodes.management.commands.add_image import image_property
from nodes.models import Image
from nodes.rollouts.auto import nodes_auto_upgrade_set
from nodes.rollouts.models import Rollout, RolloutNode
from tests.factories import GiB, HostFactory, ImageFactory, TiB
from tests.nodes.rollouts.support import running_node
from tests.support import ROOT, manage, subprocess_env


@pytest.fixture
def flagged():
    """Two auto_upgrade nodes on eth@1.0."""
    v1 = ImageFactory(protocol="eth", version="1.0", min_cpu_cores=1, min_memory_bytes=GiB, min_disk_bytes=GiB)
    host = HostFactory(name="h1", cpu_cores=16, memory_bytes=64 * GiB, disk_bytes=TiB)
    nodes = [running_node(host=host, image=v1, name=f"n{i}") for i in (1, 2)]
    nodes_auto_upgrade_set(node_ids=[node.pk for node in nodes], auto_upgrade=True)
    return nodes


def test_property_arguments_parse_adds_only_after_the_last_colon():
    assert image_property("archive=off") == {"key": "archive", "default_value": "off"}
    assert image_property("archive=off:1,,-2") == {
        "key": "archive",
        "default_value": "off",
        "add_cpu_cores": 1,
        "add_memory_bytes": None,
        "add_disk_bytes": -2,
    }
    assert image_property("url=http://a:80")["default_value"] == "http://a:80"
    assert image_property("empty=") == {"key": "empty", "default_value": ""}
    with pytest.raises(argparse.ArgumentTypeError):
        image_property("=x")
    with pytest.raises(argparse.ArgumentTypeError):
        image_property("novalue")


@pytest.mark.django_db
def test_a_refused_image_writes_nothing_and_rolls_out_nothing(flagged):
    with pytest.raises(InvalidInput) as refused:
        image_create(protocol="eth", version="1.1", properties=[{"key": "k"}, {"key": "k", "default_value": "x"}])

    assert "repeated" in str(refused.value.extra["errors"]["properties"])
    assert not Image.objects.filter(version="1.1").exists() and not Rollout.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_add_image_from_a_shell_creates_the_image_and_its_planned_rollout(flagged):
    added = manage(
        "add_image", "eth", "1.2", "--min-cpu-cores", "2", "--min-memory-bytes", str(2 * GiB),
        "--property", "archive=off:,,1099511627776", "--property", "mode=fast",
    )  # fmt: skip

    assert added.returncode == 0, added.stderr
    image = Image.objects.get(protocol="eth", version="1.2")
    rollout = Rollout.objects.get()
    assert f"Added eth@1.2 ({image.pk}): minimum 2 cores, 2.0 GiB" in added.stdout
    assert "archive=off (otherwise adds 1.0 TiB)" in added.stdout and "mode=fast" in added.stdout
    assert f"Auto-upgrade: rollout {rollout.pk}, planned." in added.stdout
    assert rollout.auto and rollout.image_id == image.pk and rollout.creator is None
    assert RolloutNode.objects.filter(rollout=rollout).count() == 2

    taken = manage("add_image", "eth", "1.2")
    assert taken.returncode == 1 and "eth@1.2 already exists" in taken.stderr
    assert "Traceback" not in taken.stderr
    bad = manage("add_image", "eth", "1.3", "--property", "k=a", "--property", "k=b")
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    for usage in (["eth"], ["eth", "1.3", "--min-cpu-cores", "two"], ["eth", "1.3", "--property", "nokey"]):
        assert manage("add_image", *usage).returncode == 2, usage
    assert Image.objects.filter(version="1.3").count() == 0 and Rollout.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_add_image_starts_the_rollout_at_once_with_auto_upgrade_start(flagged):
    added = subprocess.run(
        [sys.executable, "manage.py", "add_image", "eth", "1.5", "--json"],
        cwd=ROOT,
        env={**subprocess_env(), "AUTO_UPGRADE_START": "true"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert added.returncode == 0, added.stderr
    data = json.loads(added.stdout)
    assert data["auto_rollout_state"] == "running"
    assert Rollout.objects.get(pk=data["auto_rollout_id"]).state == "running"
    assert data["protocol"] == "eth" and data["version"] == "1.5" and data["properties"] == []


@pytest.mark.django_db(transaction=True)
def test_add_image_without_older_auto_upgrade_nodes_makes_no_rollout(flagged):
    added = manage("add_image", "eth", "2.0", "--json")

    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["auto_rollout_id"] is None and not Rollout.objects.exists()
