"""Crash safety with real worker processes (§10): a worker SIGKILLed at injected points — inside
a node's upgrade, after it but before the rollout row moves, after both committed, between
batches — then a new worker (`manage.py db_worker`, which recovers first): every selected node
upgraded exactly once (NodeLog), none forgotten, counters and allocations audited clean.
Two workers on one rollout never upgrade a node twice."""

import signal
import subprocess
import sys
import time

import pytest
from django_tasks.base import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from nodes.audit import node_allocation_findings
from nodes.models import Command, CommandKind, NodeLog
from nodes.rollouts.models import Rollout, RolloutNode
from nodes.rollouts.plan import selection_check
from nodes.rollouts.services import rollout_create
from tests.factories import GiB, HostFactory, ImageFactory, TiB
from tests.invariants import assert_counters_exact
from tests.nodes.rollouts.support import answer, running_node
from tests.support import ROOT, subprocess_env

pytestmark = pytest.mark.django_db(transaction=True)

CRASH_WORKER = ROOT / "tests" / "nodes" / "rollouts" / "crash_worker.py"
DEADLINE_SECONDS = 90


def spawn(*args) -> subprocess.Popen:
    env = {**subprocess_env(), "ROLLOUT_TICK_SECONDS": "1"}
    return subprocess.Popen(
        [sys.executable, *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def worker() -> subprocess.Popen:
    return spawn("manage.py", "db_worker", "--no-startup-delay", "--interval", "0.05", "--no-reload", "-v", "0")


def agents_until(done, processes) -> None:
    """The test plays the agents: it answers every open upgrade until `done()` holds."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not done():
        assert time.monotonic() < deadline, "timed out"
        for process in processes:
            assert process.poll() is None or process.returncode == -signal.SIGKILL, process.stderr.read()
        answer("succeeded")
        time.sleep(0.05)


def stop(*processes) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)


def eight_nodes_rollout(**options):
    """Eight nodes on two hosts to move to v2, started: by default canary 1, then batches of 3."""
    v1 = ImageFactory(protocol="eth", version="1.0", min_cpu_cores=2, min_memory_bytes=GiB, min_disk_bytes=GiB)
    v2 = ImageFactory(protocol="eth", version="2.0", min_cpu_cores=3, min_memory_bytes=GiB, min_disk_bytes=GiB)
    hosts = [HostFactory(name=f"h{i}", cpu_cores=64, memory_bytes=64 * GiB, disk_bytes=TiB) for i in (1, 2)]
    for i in range(8):
        running_node(host=hosts[i % 2], image=v1, name=f"n{i}")
    options = {"canary": 1, "batch_size": 3, "pause_after_canary": False, **options}
    return rollout_create(selection=selection_check(image_id=v2.pk, **options), start=True)


def state(rollout) -> str:
    return Rollout.objects.values_list("state", flat=True).get(pk=rollout.pk)


def assert_each_node_upgraded_exactly_once(rollout):
    started = list(NodeLog.objects.filter(event="upgrade_started").values_list("node_name", flat=True))
    assert sorted(started) == sorted(f"n{i}" for i in range(8)), started
    assert Command.objects.filter(kind=CommandKind.NODE_UPGRADE).count() == 8
    assert set(RolloutNode.objects.filter(rollout=rollout).values_list("status", flat=True)) == {"succeeded"}
    assert_counters_exact()
    assert list(node_allocation_findings()) == []


def upgraded_names() -> set:
    return set(NodeLog.objects.filter(event="upgrade_started").values_list("node_name", flat=True))


@pytest.mark.parametrize(
    "point, nth, committed",
    [
        ("inside_upgrade", 2, 1),  # canary n0 done; killed inside batch 2's first upgrade
        ("before_row_moves", 2, 1),  # ... after node_upgrade returned, before the row moved
        ("after_upgrade_commit", 2, 2),  # batch 2's first node committed, row and all
        ("between_batches", 1, 1),  # batch 1 ended, batch 2 recorded, nothing of it started
    ],
)
def test_a_worker_killed_at_any_point_loses_nothing_and_repeats_nothing(point, nth, committed):
    rollout = eight_nodes_rollout()
    crashing = spawn(str(CRASH_WORKER), point, str(nth))
    try:
        agents_until(lambda: crashing.poll() is not None, [crashing])
    finally:
        if crashing.poll() is None:
            crashing.kill()
            crashing.wait()
    assert crashing.returncode == -signal.SIGKILL, crashing.stderr.read()

    # What the kill left: exactly what had committed. The upgrade and its row's move are one
    # commit: killed between them, neither is there.
    # (batch 2 = n2, n4, n6, upgraded in any order).
    upgraded = upgraded_names()
    assert "n0" in upgraded and len(upgraded) == committed and upgraded <= {"n0", "n2", "n4", "n6"}
    rows = dict(RolloutNode.objects.filter(rollout=rollout).values_list("node_name", "status"))
    assert {name for name, status in rows.items() if status != "pending"} == upgraded
    orphans = list(DBTaskResult.objects.filter(status=TaskResultStatus.RUNNING).values_list("pk", flat=True))
    assert len(orphans) == 1  # no lease: the killed worker's task stays RUNNING...

    successor = worker()
    try:
        agents_until(lambda: state(rollout) == "completed", [successor])
    finally:
        stop(successor)

    assert_each_node_upgraded_exactly_once(rollout)
    orphan = DBTaskResult.objects.get(pk=orphans[0])  # ...until the next worker of the machine starts
    assert (orphan.status, orphan.exception_class_path) == ("FAILED", "nodes.rollouts.workers.WorkerDied")


def test_two_workers_on_one_rollout_never_upgrade_a_node_twice():
    rollout = eight_nodes_rollout(canary=0, batch_size=8)
    workers = [worker(), worker()]
    try:
        agents_until(lambda: state(rollout) == "completed", workers)
    finally:
        stop(*workers)

    assert_each_node_upgraded_exactly_once(rollout)
