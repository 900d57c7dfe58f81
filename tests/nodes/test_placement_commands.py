"""manage.py place_nodes and manage.py headroom (§11): output, --json, exit codes 0/1/2."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from nodes.models import Node
from tests.factories import HostFactory, ImageFactory
from tests.invariants import assert_counters_exact
from tests.support import manage

pytestmark = pytest.mark.django_db


def run(*args):
    """(exit code, stdout, stderr) of a command run in-process."""
    out, err = StringIO(), StringIO()
    try:
        call_command(*args, stdout=out, stderr=err)
    except CommandError as error:
        return error.returncode, out.getvalue(), err.getvalue() + str(error)
    return 0, out.getvalue(), err.getvalue()


def fleet():
    image = ImageFactory(protocol="eth", version="1.0", min_cpu_cores=2, min_memory_bytes=1, min_disk_bytes=1)
    HostFactory(name="a", cpu_cores=4, memory_bytes=10, disk_bytes=10, region="eu-1")
    HostFactory(name="b", cpu_cores=2, memory_bytes=10, disk_bytes=10, region="us-1")
    return image


def test_place_nodes_places_all_and_exits_0():
    fleet()
    code, out, _err = run("place_nodes", "eth@1.0", "--count", "3", "--name-prefix", "web")
    assert code == 0
    # binpack: b scores (2/2 + 1/10 + 1/10) / 3 = 0.4, a (2/4 + 1/10 + 1/10) / 3 = 0.23.
    assert out.splitlines() == [
        "Placed web-1 on b",
        "Placed web-2 on a",
        "Placed web-3 on a",
        "Placed 3 of 3 node(s) of eth@1.0.",
    ]
    assert sorted(Node.objects.values_list("name", flat=True)) == ["web-1", "web-2", "web-3"]
    assert_counters_exact()


def test_place_nodes_stops_at_the_first_no_host_available_and_exits_1():
    fleet()
    code, out, err = run("place_nodes", "eth@1.0", "--count", "5", "--name-prefix", "web", "--region", "eu-1", "--json")
    assert code == 1
    document = json.loads(out)
    assert (document["count"], document["placed"]) == (5, 2)
    [refusal] = document["refusals"]
    assert (refusal["name"], refusal["code"]) == ("web-3", "no_host_available")
    assert (
        refusal["detail"]
        == "No host can take this node: 0 of 2 hosts fit (1 short of cpu_cores, 1 outside region eu-1)."
    )
    assert refusal["detail"] in err
    assert Node.objects.count() == 2


def test_place_nodes_prints_other_refusals_and_goes_on():
    image = fleet()
    HostFactory(name="c", cpu_cores=100, memory_bytes=10, disk_bytes=10)
    from nodes.changes import node_create

    node_create(name="web-1", host_id=None, image_id=image.pk)
    code, _out, err = run("place_nodes", "eth@1.0", "--count", "2", "--name-prefix", "web")
    assert code == 1
    assert "A node named web-1 already exists." in err
    assert Node.objects.filter(name="web-2").exists()


def test_place_nodes_dry_run_writes_nothing():
    fleet()
    code, out, _err = run("place_nodes", "eth@1.0", "--count", "3", "--name-prefix", "web", "--dry-run")
    assert code == 0
    assert out.splitlines()[-1] == "Would place 3 of 3."
    assert Node.objects.count() == 0
    code, out, _err = run("place_nodes", "eth@1.0", "--count", "4", "--name-prefix", "w", "--dry-run", "--json")
    assert code == 1
    plan = json.loads(out)
    assert [row["host_name"] for row in plan["placements"]] == ["b", "a", "a"]
    assert plan["error"]["code"] == "no_host_available"
    assert Node.objects.count() == 0


def test_an_unknown_image_is_a_refusal():
    code, _out, err = run("place_nodes", "eth@9", "--count", "1", "--name-prefix", "w")
    assert code == 1
    assert "No image with id or protocol@version 'eth@9'." in err


def test_headroom_text_and_json():
    fleet()
    ImageFactory(protocol="zzz", version="1", min_cpu_cores=0, min_memory_bytes=0, min_disk_bytes=0)
    code, out, _err = run("headroom")
    assert code == 0
    assert out.splitlines() == [
        "eth@1.0 (2 cores, 1 B, 1 B): 3 more node(s) on 2 host(s)",
        "  eu-1: 2",
        "  us-1: 1",
        "zzz@1 (0 cores, 0 B, 0 B): unbounded more node(s) on 2 host(s)",
        "  eu-1: unbounded",
        "  us-1: unbounded",
    ]
    code, out, _err = run("headroom", "eth@1.0", "--region", "us-1", "--json")
    [row] = json.loads(out)
    assert (row["image"], row["nodes"], row["regions"]) == ("eth@1.0", 1, [{"region": "us-1", "nodes": 1}])


@pytest.mark.django_db(transaction=True)
def test_usage_errors_exit_2():
    fleet()
    assert manage("place_nodes", "eth@1.0", "--count", "0", "--name-prefix", "w").returncode == 2
    assert manage("place_nodes", "eth@1.0", "--count", "1").returncode == 2  # no --name-prefix
    assert manage("place_nodes", "eth@1.0", "--count", "1", "--name-prefix", "w", "--strategy", "x").returncode == 2
    assert manage("headroom", "nope@1").returncode == 2
    done = manage("place_nodes", "eth@1.0", "--count", "1", "--name-prefix", "w")
    assert (done.returncode, done.stdout.splitlines()[-1]) == (0, "Placed 1 of 1 node(s) of eth@1.0.")
