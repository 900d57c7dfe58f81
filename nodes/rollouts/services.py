"""Services of rollouts (§10): create (from a plan), start, pause, resume, abort, advance, and
the hooks that the agent lifecycle and node_delete call inside their own transactions.

What each keeps: a node is in at most one active rollout (a partial unique index backs it);
each node's upgrade commits together with its row's move `pending` -> `upgrading` (so a worker
killed at any moment repeats nothing and forgets nothing); every state change and every agent
result of a rollout enqueues its next step (`advance_rollout`) in the transaction that makes
the step due — with the database task backend that is an INSERT in the same transaction.

Locks (hosts.locks' order): the rollout's row, then a node and its host (node_upgrade), then
rollout-node rows (UPDATEs). The lifecycle and node_delete never take the rollout's row: they
lock node and host, then UPDATE the rollout-node row; so waits always point the same way.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError
from django.db.models import Count
from django.utils import timezone

from config.db import atomic_with_retry
from config.errors import ApplicationError, Busy, InvalidState, NotFound
from config.logging import log_event
from hosts.models import Source
from nodes.models import Command, Node
from nodes.rollouts.models import (
    FAILURE_STATUSES,
    TRANSITIONS,
    Rollout,
    RolloutNode,
    RolloutNodeStatus,
    RolloutState,
)
from nodes.rollouts.plan import Plan, Selection, rollout_plan
from nodes.services import node_upgrade

logger = logging.getLogger("nodes.rollouts")

CREATE_ATTEMPTS = 3


def enqueue_advance(rollout_id, *, delay: timedelta | None = None) -> None:
    """Enqueues the rollout's next step. With the database backend this INSERTs the task row in
    the caller's transaction: it exists exactly when the change that made it due commits."""
    from nodes.rollouts.tasks import advance_rollout  # tasks import these services

    task = advance_rollout if delay is None else advance_rollout.using(run_after=timezone.now() + delay)
    task.enqueue(str(rollout_id))


def _lock(rollout_id) -> Rollout:
    try:
        return Rollout.objects.select_for_update(no_key=True).get(pk=rollout_id)
    except (Rollout.DoesNotExist, ValueError, TypeError):
        raise NotFound(f"No rollout with id {rollout_id}.") from None


def _move(rollout: Rollout, state: str, *, action: str, reason: str = "") -> None:
    """The one place a rollout changes state: checks TRANSITIONS (`invalid_state` otherwise),
    writes the row and enqueues the advance in the caller's transaction."""
    if state not in TRANSITIONS[rollout.state]:
        raise InvalidState(
            f"Rollout {rollout.pk} is {rollout.state}: it cannot {action}.",
            state=rollout.state,
        )
    now = timezone.now()
    rollout.state = state
    rollout.reason = reason
    fields = ["state", "reason", "updated_at"]
    if state == RolloutState.RUNNING and rollout.started_at is None:
        rollout.started_at = now
        fields.append("started_at")
        if rollout.batches and rollout.current_batch == 0:
            rollout.current_batch = 1
            fields.append("current_batch")
    if state in (RolloutState.COMPLETED, RolloutState.ABORTED):
        rollout.finished_at = now
        fields.append("finished_at")
        # The rollout lets go of its nodes; in-flight rows still take their agents' results.
        RolloutNode.objects.filter(rollout=rollout, holds_node=True).update(holds_node=False)
    rollout.save(update_fields=fields)
    enqueue_advance(rollout.pk)
    transaction_log = {"rollout": str(rollout.pk), "state": state, "reason": reason}
    log_event(logger, "rollout_state", **transaction_log)


# ---------------------------------------------------------------------------------------------
# Create and control


def rollout_create(*, selection: Selection, start: bool = False, actor=None, auto: bool = False) -> Rollout:
    """Plans the selection and writes the rollout with one row per node (skipped ones with the
    reason), `planned` — or `running` with its first advance enqueued when `start`."""

    def work() -> Rollout:
        plan = rollout_plan(selection)
        rollout = Rollout.objects.create(
            image=selection.image,
            from_versions=list(selection.from_versions),
            host_ids=[str(pk) for pk in selection.host_ids],
            node_ids=[str(pk) for pk in selection.node_ids],
            batch_size=selection.batch_size,
            canary=selection.canary,
            pause_after_canary=selection.pause_after_canary,
            max_failures=selection.max_failures,
            result_timeout_seconds=selection.result_timeout_seconds,
            batches=plan.batches,
            auto=auto,
            creator=actor if actor is not None and actor.is_authenticated else None,
        )
        _write_rows(rollout, plan)
        if start:
            _move(rollout, RolloutState.RUNNING, action="start")
        return rollout

    for _attempt in range(CREATE_ATTEMPTS):
        try:
            rollout = atomic_with_retry(work)
        except IntegrityError:
            # A rollout created at the same moment took some of these nodes (the unique index
            # of active rows): plan again, now seeing it.
            continue
        log_event(logger, "rollout_created", rollout=str(rollout.pk), image=str(selection.image), batches=rollout.batches)
        return rollout
    raise Busy("Other rollouts kept taking these nodes while this one was planned; try again.")


def _write_rows(rollout: Rollout, plan: Plan) -> None:
    rows = (
        RolloutNode(
            rollout=rollout,
            node_id=node.node_id,
            node_name=node.node_name,
            host_id=node.host_id,
            host_name=node.host_name,
            position=node.position,
            batch=node.batch,
            status=node.status,
            reason=node.reason,
            holds_node=node.status != RolloutNodeStatus.SKIPPED,
            **{f"old_{name}": amount for name, amount in node.old.items()},
            **{f"new_{name}": amount for name, amount in node.new.items()},
        )
        for node in plan.nodes
    )
    RolloutNode.objects.bulk_create(rows, batch_size=2000)


def rollout_start(*, rollout_id, actor=None) -> Rollout:
    """planned -> running; the first batch starts in the background."""

    def work():
        rollout = _lock(rollout_id)
        _move(rollout, RolloutState.RUNNING if rollout.state == RolloutState.PLANNED else "start", action="start")
        return rollout

    return atomic_with_retry(work)


def rollout_pause(*, rollout_id, actor=None) -> Rollout:
    """running -> paused: no further node starts; upgrades in flight finish."""

    def work():
        rollout = _lock(rollout_id)
        _move(rollout, RolloutState.PAUSED, action="pause", reason="paused by support")
        return rollout

    return atomic_with_retry(work)


def rollout_resume(*, rollout_id, max_failures: int | None = None, actor=None) -> Rollout:
    """paused or halted -> running. A halted rollout needs `max_failures` above its failures so
    far. Resuming never pauses after the canary again (that batch has ended)."""

    def work():
        rollout = _lock(rollout_id)
        if rollout.state not in (RolloutState.PAUSED, RolloutState.HALTED):
            raise InvalidState(f"Rollout {rollout.pk} is {rollout.state}: it cannot resume.", state=rollout.state)
        failures = rollout_failures(rollout.pk)
        limit = rollout.max_failures if max_failures is None else max_failures
        if limit <= failures:
            raise InvalidState(
                f"Rollout {rollout.pk} has {failures} failure(s), as many as max_failures allows ({limit}): "
                f'resume it with a higher max_failures (e.g. {{"max_failures": {failures + 1}}}).',
                state=rollout.state,
            )
        if limit != rollout.max_failures:
            rollout.max_failures = limit
            rollout.save(update_fields=["max_failures"])
        _move(rollout, RolloutState.RUNNING, action="resume")
        return rollout

    return atomic_with_retry(work)


def rollout_abort(*, rollout_id, actor=None) -> Rollout:
    """Any active state -> aborted: no new node starts, upgrades in flight finish (their rows
    still take the agents' results); the rollout lets go of its nodes."""

    def work():
        rollout = _lock(rollout_id)
        _move(rollout, RolloutState.ABORTED, action="abort", reason="aborted by support")
        return rollout

    return atomic_with_retry(work)


def rollout_failures(rollout_id) -> int:
    return RolloutNode.objects.filter(rollout_id=rollout_id, status__in=FAILURE_STATUSES).count()


# ---------------------------------------------------------------------------------------------
# Advance (the background step)


def rollout_advance(*, rollout_id) -> str:
    """Moves a running rollout as far as it can now, and returns its state. Idempotent: every
    step re-reads under the rollout's row lock and does nothing already done, so two workers or
    a worker restarted after a kill never upgrade a node twice.

    Steps, each its own transaction: rows past their result timeout fail; the current batch's
    pending nodes are upgraded one by one (each upgrade commits with its row); when every row of
    the batch is final, the batch ends (halted / paused after the canary / completed / next)."""
    atomic_with_retry(lambda: _fail_timed_out(rollout_id))
    deferred_only = False
    while True:
        step = atomic_with_retry(lambda: _step(rollout_id, stop_on_new_batch=deferred_only))
        if step == "batch_started_after_deferral":
            break
        deferred_only = step == "deferred"
        if step not in ("upgraded", "refused", "deferred", "next_batch"):
            break
    return atomic_with_retry(lambda: _arm_tick(rollout_id))


def _fail_timed_out(rollout_id) -> None:
    rollout = _lock(rollout_id)
    if rollout.state != RolloutState.RUNNING:
        return
    seconds = rollout.result_timeout_seconds
    RolloutNode.objects.filter(
        rollout=rollout,
        status=RolloutNodeStatus.UPGRADING,
        upgraded_at__lt=timezone.now() - timedelta(seconds=seconds),
    ).update(status=RolloutNodeStatus.FAILED, reason=f"no result within {seconds} s")


def _arm_tick(rollout_id) -> str:
    """While running, keeps one delayed advance ahead (timeouts are noticed without agents)."""
    rollout = _lock(rollout_id)
    if rollout.state == RolloutState.RUNNING:
        tick = timedelta(seconds=settings.ROLLOUT_TICK_SECONDS)
        now = timezone.now()
        if rollout.tick_due_at is None or rollout.tick_due_at <= now:
            rollout.tick_due_at = now + tick
            rollout.save(update_fields=["tick_due_at"])
            enqueue_advance(rollout.pk, delay=tick)
    return rollout.state


def _step(rollout_id, *, stop_on_new_batch: bool) -> str:
    rollout = _lock(rollout_id)
    if rollout.state != RolloutState.RUNNING:
        return rollout.state
    if rollout.current_batch == 0:
        if rollout.batches == 0:
            _move(rollout, RolloutState.COMPLETED, action="complete", reason="no node to upgrade")
            return "completed"
        rollout.current_batch = 1
        rollout.save(update_fields=["current_batch"])
    batch = RolloutNode.objects.filter(rollout=rollout, batch=rollout.current_batch)
    row = batch.filter(status=RolloutNodeStatus.PENDING).order_by("position").first()
    if row is not None:
        return _upgrade_row(rollout, row)
    if batch.filter(status=RolloutNodeStatus.UPGRADING).exists():
        return "waiting"
    return _end_batch(rollout, stop_on_new_batch=stop_on_new_batch)


def _open_command(node_id) -> Command | None:
    return Command.objects.filter(node_id=node_id, status__in=OPEN_COMMAND_STATUSES).order_by("-id").first()


def _upgrade_row(rollout: Rollout, row: RolloutNode) -> str:
    """Upgrades one pending node of the current batch; the row moves in the same transaction."""
    if _open_command(row.node_id) is not None:
        later = rollout.current_batch + 1
        if later > rollout.batches:
            rollout.batches = later
            rollout.save(update_fields=["batches"])
        RolloutNode.objects.filter(pk=row.pk).update(batch=later)
        return "deferred"
    try:
        outcome = node_upgrade(
            node_id=row.node_id, image_id=rollout.image_id, actor=rollout.creator, source=Source.ROLLOUT
        )
    except NotFound:
        _set_row(row, status=RolloutNodeStatus.SKIPPED, reason="deleted", holds_node=False)
        return "refused"
    except Busy:
        raise
    except ApplicationError as error:
        _set_row(row, status=RolloutNodeStatus.REFUSED, reason=error.detail)
        return "refused"
    command_id = Command.objects.filter(node_id=row.node_id).order_by("-id").values_list("id", flat=True).first()
    _set_row(
        row,
        status=RolloutNodeStatus.UPGRADING,
        command_id=command_id,
        upgraded_at=timezone.now(),
        **{f"new_{name}": amount for name, amount in outcome.new.items()},
    )
    return "upgraded"


def _set_row(row: RolloutNode, **fields) -> None:
    RolloutNode.objects.filter(pk=row.pk).update(**fields)


def _end_batch(rollout: Rollout, *, stop_on_new_batch: bool) -> str:
    """Every row of the current batch is final: decide, once per batch, what comes next."""
    if rollout.ended_batch < rollout.current_batch:
        rollout.ended_batch = rollout.current_batch
        rollout.save(update_fields=["ended_batch"])
        failures = rollout_failures(rollout.pk)
        if failures >= rollout.max_failures:
            _move(
                rollout,
                RolloutState.HALTED,
                action="halt",
                reason=f"{failures} failed or rolled-back node(s) reached max_failures ({rollout.max_failures}) "
                f"at the end of batch {rollout.current_batch}.",
            )
            return "halted"
        if rollout.current_batch == 1 and rollout.canary and rollout.pause_after_canary:
            _move(rollout, RolloutState.PAUSED, action="pause", reason="paused after the canary batch")
            return "paused"
    if rollout.current_batch >= rollout.batches:
        _move(rollout, RolloutState.COMPLETED, action="complete")
        return "completed"
    rollout.current_batch += 1
    rollout.save(update_fields=["current_batch"])
    return "batch_started_after_deferral" if stop_on_new_batch else "next_batch"


# ---------------------------------------------------------------------------------------------
# Hooks: called inside the transactions of the agent lifecycle and node_delete


def rollout_command_closed(*, command_id, status: str, reason: str = "") -> None:
    """The agent's result (or a cancel) closed a node_upgrade command: the rollout row waiting on
    it takes its final status, and its rollout's advance is enqueued, in the caller's
    transaction. A row already final (timed out) keeps its status: a late result still applies
    to the node (§9), not to the row."""
    rollout_ids = list(
        RolloutNode.objects.filter(command_id=command_id, status=RolloutNodeStatus.UPGRADING)
        .values_list("rollout_id", flat=True)
    )
    if not rollout_ids:
        return
    RolloutNode.objects.filter(command_id=command_id, status=RolloutNodeStatus.UPGRADING).update(
        status=status, reason=reason
    )
    for rollout_id in rollout_ids:
        enqueue_advance(rollout_id)


def rollout_node_deleted(*, node_id) -> None:
    """A node was deleted: its rows not yet final become `skipped` ("deleted") and let go of it."""
    rows = RolloutNode.objects.filter(node_id=node_id, holds_node=True)
    rollout_ids = list(rows.values_list("rollout_id", flat=True))
    if not rollout_ids:
        return
    rows.filter(status__in=(RolloutNodeStatus.PENDING, RolloutNodeStatus.UPGRADING)).update(
        status=RolloutNodeStatus.SKIPPED, reason="deleted"
    )
    RolloutNode.objects.filter(node_id=node_id, holds_node=True).update(holds_node=False)
    for rollout_id in rollout_ids:
        enqueue_advance(rollout_id)


def rollout_counts(rollout_ids) -> dict:
    """{rollout id: {status: count}} for these rollouts, every status present: one query."""
    counts = {pk: dict.fromkeys(RolloutNodeStatus.values, 0) for pk in rollout_ids}
    rows = (
        RolloutNode.objects.filter(rollout_id__in=list(counts))
        .values_list("rollout_id", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    for rollout_id, status, n in rows:
        counts[rollout_id][status] = n
    return counts
