"""What a starting task worker does before it takes work: django-tasks-db has no lease and no
retries, so a task whose worker was killed stays RUNNING forever and is never run again. The
project's `db_worker` therefore marks the tasks its dead predecessors on this machine left
RUNNING as failed, and re-enqueues the advance of every running rollout (the advance is
idempotent: a duplicate does nothing)."""

import os
import socket
import uuid

from django.db import transaction
from django.utils import timezone
from django_tasks.base import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from nodes.rollouts.hooks import enqueue_advance
from nodes.rollouts.models import Rollout, RolloutState

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
    of every running rollout. Returns (tasks failed, rollouts re-enqueued)."""
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
        running = list(Rollout.objects.filter(state=RolloutState.RUNNING).values_list("pk", flat=True))
        for rollout_id in running:
            enqueue_advance(rollout_id)
    return failed, len(running)
