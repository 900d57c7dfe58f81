"""Helpers of the tests of background work that must never stall (issue 19): the real
`manage.py db_worker` in a subprocess with short ticks, another session holding a rollout's
row, bounded waits."""

import signal
import subprocess
import sys
import time

from nodes.rollouts.models import Rollout, RolloutNode
from tests.support import ROOT, row_lock_held, subprocess_env

DEADLINE_SECONDS = 30
QUIET = ("-v", "0")


def db_worker(**env) -> subprocess.Popen:
    """`manage.py db_worker` as production runs it, with ticks (and sweeps) of one second."""
    env = {**subprocess_env(), "ROLLOUT_TICK_SECONDS": "1", "ROLLOUT_SWEEP_SECONDS": "1", **env}
    return subprocess.Popen(
        [sys.executable, "manage.py", "db_worker", "--no-startup-delay", "--interval", "0.05", "--no-reload", *QUIET],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def wait_until(done, *, seconds: float = DEADLINE_SECONDS, worker: subprocess.Popen | None = None, what=""):
    """Polls `done()` every 50 ms for at most `seconds`; fails the test when it never holds (or
    when the worker died)."""
    deadline = time.monotonic() + seconds
    while not done():
        if worker is not None and worker.poll() is not None:
            raise AssertionError(f"the worker died: {worker.stderr.read()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what or done}")
        time.sleep(0.05)


def row_of(rollout, name) -> tuple[str, str, int]:
    row = RolloutNode.objects.get(rollout=rollout, node_name=name)
    return row.status, row.reason, row.batch


def state_of(rollout) -> str:
    return Rollout.objects.values_list("state", flat=True).get(pk=rollout.pk)


def rollout_share_locked(rollout_pk):
    """Another session holds `SELECT … FROM nodes_rollout … FOR SHARE` on the rollout's row (as
    a long upgrade of one of its nodes would) until the block ends."""
    return row_lock_held("nodes_rollout", rollout_pk, "FOR SHARE", seconds=60)


def background_until(done, *, seconds: float = DEADLINE_SECONDS, sweep_seconds: float = 1.0, what="") -> None:
    """Production's background work in this thread until `done()`: the library worker's loop
    (dead connections closed, the next due task claimed and run by the library's `run_task`, so a
    task that raises is FAILED as in production) and db_worker's sweep every `sweep_seconds`."""
    from django.db import close_old_connections
    from django_tasks_db.models import DBTaskResult

    from nodes.rollouts.ticks import rollout_sweep
    from tests.nodes.rollouts.support import library_worker

    worker = library_worker()
    deadline = time.monotonic() + seconds
    next_sweep = time.monotonic() + sweep_seconds
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what or done}")
        close_old_connections()
        if time.monotonic() >= next_sweep:
            rollout_sweep()
            next_sweep = time.monotonic() + sweep_seconds
        task = DBTaskResult.objects.ready().first()
        if task is None:
            time.sleep(0.05)
            continue
        task.claim(worker.worker_id)
        worker.run_task(task)
