"""How a rollout keeps moving whatever one of its steps raises (issue 19).

django-tasks-db has no retries: a task that raises is FAILED for good. A rollout therefore never
depends on a step committing to have its next step queued:

- **The tick is queued before the step, in its own statements.** `keep_ticking` runs first in
  every advance, outside the step's transaction and without the rollout's row lock (a lock
  timeout on that row cannot stop it): while a rollout needs ticks it makes sure one delayed
  advance is queued. A step that then fails (a lock timeout, a lost connection, a deadlock that
  outlasts the retries) leaves that tick behind, and the tick tries again.
- **Workers sweep.** Every `ROLLOUT_SWEEP_SECONDS` each `db_worker` re-enqueues the advance of
  every rollout that needs ticks and has none queued (`rollout_sweep`): what a task that died
  before queuing its tick (a connection dropped at its first statement, a SIGKILL, a lost
  machine's RUNNING task) would otherwise leave stalled.
- **A failed step is visible**: logged (`rollout_step_failed`, with the rollout and the error),
  counted (`nodefleet_rollout_step_failures_total` in the worker's process,
  `nodefleet_rollouts_step_failing` from the database on every scrape) and recorded on the
  rollout (`last_step_failed_at`, `last_step_error`, `step_failures` in a row), which its admin
  page shows.

A rollout needs ticks while it is running, and in any other state while a row of its current
batch is `upgrading` (only the current batch can have one): so rows of a paused, halted or
aborted rollout still fail at their result timeout.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone
from prometheus_client import Counter, Gauge

from config.db import atomic_with_retry
from config.errors import ApplicationError
from config.http.logging import log_event
from nodes.rollouts.hooks import enqueue_advance
from nodes.rollouts.models import Rollout, RolloutNode, RolloutNodeStatus, RolloutState

logger = logging.getLogger("nodes.rollouts")

STEP_FAILURES = Counter(
    "nodefleet_rollout_step_failures", "Steps of rollout advances that raised (each is tried again by the next tick)."
)
STEPS_FAILING = Gauge("nodefleet_rollouts_step_failing", "Rollouts whose last step failed (the next tick tries again).")
ERROR_MAX_LENGTH = 2000


def ticking() -> Q:
    """The rollouts that need ticks: running, or with an `upgrading` row in their current batch
    (paused, halted, aborted: its result timeout must still apply)."""
    upgrading = RolloutNode.objects.filter(
        rollout=OuterRef("pk"), batch=OuterRef("current_batch"), status=RolloutNodeStatus.UPGRADING
    )
    others = (RolloutState.PAUSED, RolloutState.HALTED, RolloutState.ABORTED)
    return Q(state=RolloutState.RUNNING) | (Q(state__in=others) & Exists(upgrading))


def _advances():
    from django_tasks.base import TaskResultStatus
    from django_tasks_db.models import DBTaskResult

    from nodes.rollouts.tasks import advance_rollout

    return DBTaskResult.objects.filter(status=TaskResultStatus.READY, task_path=advance_rollout.module_path)


def keep_ticking(rollout_id) -> bool:
    """Queues the rollout's next delayed advance (in `ROLLOUT_TICK_SECONDS`) unless it needs no
    tick or one is queued already; True when it queued one. Autocommit statements, no row lock:
    call it before the step, so that whatever the step raises, the tick is there."""
    from django_tasks_db.models import get_date_max

    if not Rollout.objects.filter(ticking(), pk=rollout_id).exists():
        return False
    mine = {"args": [str(rollout_id)], "kwargs": {}}
    queued = _advances().filter(args_kwargs=mine, run_after__gt=timezone.now(), run_after__lt=get_date_max())
    if queued.exists():
        return False
    enqueue_advance(rollout_id, delay=timedelta(seconds=settings.ROLLOUT_TICK_SECONDS))
    return True


def rollout_sweep() -> list:
    """Enqueues the advance of every rollout that needs ticks and has no advance queued (a READY
    task, due or delayed); returns their ids. On a database with no such rollout: one statement."""
    needing = list(Rollout.objects.filter(ticking()).values_list("pk", flat=True))
    if not needing:
        return []
    queued = {
        (args_kwargs.get("args") or [None])[0]
        for args_kwargs in _advances().values_list("args_kwargs", flat=True)
        if isinstance(args_kwargs, dict)
    }
    missing = [pk for pk in needing if str(pk) not in queued]
    if missing:
        with transaction.atomic():
            for pk in missing:
                enqueue_advance(pk)
        log_event(logger, "rollouts_swept", logging.WARNING, rollouts=",".join(str(pk) for pk in missing))
    return missing


def describe(error: BaseException) -> str:
    """An error as support reads it: the refusal's code and detail, and the database's own
    first line (`canceling statement due to lock timeout`, `deadlock detected`, ...)."""
    if isinstance(error, ApplicationError):
        text = f"{error.code}: {error.detail}"
    else:
        text = f"{type(error).__name__}: {error}"
    cause = error.__cause__
    if cause is not None:
        first = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        text += f" ({first})"
    return text[:ERROR_MAX_LENGTH]


def step_failed(rollout_id, error: BaseException) -> None:
    """A step of the rollout's advance raised: logged, counted, and recorded on the rollout in a
    transaction of its own (best effort: what made the step fail may refuse this write too, e.g.
    a lock held on the rollout's row; the log line and the counter are there anyway)."""
    text = describe(error)
    STEP_FAILURES.inc()
    log_event(logger, "rollout_step_failed", logging.WARNING, rollout=str(rollout_id), error=text)
    now = timezone.now()
    try:
        atomic_with_retry(
            lambda: Rollout.objects.filter(pk=rollout_id).update(
                last_step_failed_at=now, last_step_error=text, step_failures=F("step_failures") + 1
            )
        )
    except Exception as again:  # the step's own error is what the caller raises
        unrecorded = describe(again)
        log_event(logger, "rollout_step_failure_unrecorded", logging.WARNING, rollout=str(rollout_id), error=unrecorded)


def publish_rollout_gauges() -> None:
    """Sets the /metrics gauge of rollouts whose last step failed (one small query)."""
    STEPS_FAILING.set(Rollout.objects.filter(step_failures__gt=0).count())
