"""manage.py rollout as an operator runs it: plan, create, status and controls; exit 0 / 1 / 2."""

import json

import pytest

from nodes.rollouts.models import Rollout
from tests.factories import GiB, HostFactory, ImageFactory, TiB
from tests.nodes.rollouts.support import running_node
from tests.support import fleet_snapshot, manage


@pytest.fixture
def fleet():
    v1 = ImageFactory(protocol="eth", version="1.0", min_cpu_cores=2, min_memory_bytes=GiB, min_disk_bytes=GiB)
    ImageFactory(protocol="eth", version="2.0", min_cpu_cores=3, min_memory_bytes=GiB, min_disk_bytes=GiB)
    host = HostFactory(name="h1", cpu_cores=5, memory_bytes=64 * GiB, disk_bytes=TiB)
    return [running_node(host=host, image=v1, name=f"n{i}") for i in (1, 2)]


@pytest.mark.django_db(transaction=True)
def test_plan_create_start_status_and_refusals_from_a_shell(fleet):
    before = fleet_snapshot()
    plan = manage("rollout", "plan", "eth@2.0", "--host", "h1")
    assert plan.returncode == 0, plan.stderr
    assert "1 node(s) in 1 batch(es), 1 skipped" in plan.stdout
    assert "h1/n2: skipped" in plan.stdout and "not enough CPU" in plan.stdout
    as_json = json.loads(manage("rollout", "plan", "eth@2.0", "--json").stdout)
    assert as_json["counts"]["pending"] == 1 and as_json["batches"] == 1
    assert fleet_snapshot() == before

    created = manage("rollout", "create", "eth@2.0", "--batch-size", "5", "--json")
    assert created.returncode == 0, created.stderr
    rollout_id = json.loads(created.stdout)["id"]
    assert Rollout.objects.get(pk=rollout_id).state == "planned"

    started = manage("rollout", "start", rollout_id)
    assert started.returncode == 0 and "running, batch 1 of 1" in started.stdout
    status = json.loads(manage("rollout", "status", rollout_id, "--json").stdout)
    assert status["state"] == "running" and status["counts"]["skipped"] == 1

    again = manage("rollout", "start", rollout_id)
    assert again.returncode == 1 and "is running: it cannot start" in again.stderr
    assert "Traceback" not in again.stderr
    resume = manage("rollout", "resume", rollout_id, "--max-failures", "3")
    assert resume.returncode == 1
    assert manage("rollout", "abort", rollout_id).returncode == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "args",
    [
        ("plan",),
        ("plan", "eth@9.9"),
        ("plan", "eth@2.0", "--host", "nowhere"),
        ("plan", "eth@2.0", "--batch-size", "0"),
        ("plan", "eth@2.0", "--canary", "x"),
        ("status", "not-a-uuid"),
        ("abort", "00000000-0000-0000-0000-000000000000"),
        ("launch", "x"),
    ],
)
def test_usage_errors_exit_2(fleet, args):
    result = manage("rollout", *args)

    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
