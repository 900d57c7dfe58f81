"""What a task worker does besides taking work: django-tasks-db has no lease and no retries, so
a task whose worker was killed stays RUNNING forever and is never run again, and a task that
raised is FAILED for good. The project's `db_worker` therefore marks, as it starts, the tasks
its dead predecessors on this machine left RUNNING as failed; and, as it starts and then every
`ROLLOUT_SWEEP_SECONDS` (a thread of its own), re-enqueues the advance of every rollout that
needs ticks and has none queued (nodes.rollouts.ticks.rollout_sweep; the advance is idempotent:
a duplicate does nothing)."""

import logging
import os
import socket
import threading
import uuid

from django.db import close_old_connections, connection, transaction
from django.utils import timezone
from django_tasks.base import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from config.http.logging import log_event
from nodes.rollouts.ticks import rollout_sweep

logger = logging.getLogger("nodes.rollouts")

_SEPARATOR = "/"


def worker_id() -> str:
    """`<machine>/<pid>/<random>` (at most 64 characters): lets a later worker on the same
    machine tell whether the worker that claimed a task is still alive."""
    return f"{socket.gethostname()[:40]}{_SEPARATOR}{os.getpid()}{_SEPARATOR}{uuid.uuid4().hex[:12]}"


def _dead_here(worker: str) -> bool:
    machine, _, rest = worker.partition(_SEPARATOR)
    pid, _, _ = rest.partition(_SEPARATOR)
    if machine != socket.gethostname()[:40] or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def worker_recover() -> tuple[int, int]:
    """Fails the tasks left RUNNING by dead workers of this machine and re-enqueues the advance
    of every rollout that needs ticks and has none queued. Returns (tasks failed, rollouts
    re-enqueued)."""
    orphans = [
        task.pk
        for task in DBTaskResult.objects.filter(status=TaskResultStatus.RUNNING).only("pk", "worker_ids")
        if task.worker_ids and _dead_here(task.worker_ids[-1])
    ]
    with transaction.atomic():
        failed = DBTaskResult.objects.filter(pk__in=orphans, status=TaskResultStatus.RUNNING).update(
            status=TaskResultStatus.FAILED,
            finished_at=timezone.now(),
            exception_class_path="nodes.rollouts.workers.WorkerDied",
            traceback="The worker running this task died (found by the next worker started on its machine).",
        )
    return failed, len(rollout_sweep())


class Sweeper(threading.Thread):
    """The worker's periodic sweep, beside the library's loop (which has no hook between tasks):
    its own thread, so its own database connection; an error (the database away) is logged and
    the next sweep tries again."""

    def __init__(self, seconds: float):
        super().__init__(name="rollout-sweeper", daemon=True)
        self.seconds = seconds
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.wait(self.seconds):
                close_old_connections()
                try:
                    rollout_sweep()
                except Exception as error:  # the database away, most likely: the next sweep tries again
                    log_event(logger, "rollout_sweep_failed", logging.WARNING, error=str(error).strip())
                    connection.close()
        finally:
            connection.close()
