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
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError
from django.db.models import Count, Exists, OuterRef
from django.utils import timezone

from config.db import atomic_with_retry
from config.errors import ApplicationError, Busy, InvalidState, NotFound
from config.logging import log_event
from hosts.models import Source
from nodes.models import OPEN_STATUSES, Command, CommandStatus
from nodes.rollouts.hooks import enqueue_advance
from nodes.rollouts.models import FAILURE_STATUSES, TRANSITIONS, Rollout, RolloutNode, RolloutNodeStatus, RolloutState
from nodes.rollouts.plan import Plan, Selection, rollout_plan
from nodes.services import node_upgrade

logger = logging.getLogger("nodes.rollouts")

CREATE_ATTEMPTS = 3


def _lock(rollout_id) -> Rollout:
    try:
        return Rollout.objects.select_for_update(no_key=True).get(pk=uuid.UUID(str(rollout_id)))
    except (Rollout.DoesNotExist, ValueError):
        raise NotFound(f"No rollout with id {rollout_id}.") from None


def _move(rollout: Rollout, action: str, *, reason: str = "") -> None:
    """The one place a rollout changes state: checks the action against TRANSITIONS
    (`invalid_state` otherwise), writes the row and enqueues the advance, in the caller's
    transaction (which holds the rollout's row lock)."""
    sources, state = TRANSITIONS[action]
    if rollout.state not in sources:
        raise InvalidState(f"Rollout {rollout.pk} is {rollout.state}: it cannot {action}.", state=rollout.state)
    now = timezone.now()
    rollout.state = state
    rollout.reason = reason
    fields = ["state", "reason", "updated_at"]
    if action == "start":
        rollout.started_at = now
        rollout.current_batch = min(1, rollout.batches)
        fields += ["started_at", "current_batch"]
    if state in (RolloutState.COMPLETED, RolloutState.ABORTED):
        rollout.finished_at = now
        fields.append("finished_at")
        # The rollout lets go of its nodes; rows in flight still take their agents' results.
        RolloutNode.objects.filter(rollout=rollout, holds_node=True).update(holds_node=False)
    rollout.save(update_fields=fields)
    enqueue_advance(rollout.pk)
    log_event(logger, "rollout_" + action, rollout=str(rollout.pk), state=state, reason=reason)


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
            _move(rollout, "start")
        return rollout

    for _attempt in range(CREATE_ATTEMPTS):
        try:
            rollout = atomic_with_retry(work)
        except IntegrityError:
            # A rollout created at the same moment took some of these nodes (the unique index
            # of active rows): plan again, now seeing it.
            continue
        log_event(
            logger, "rollout_created", rollout=str(rollout.pk), image=str(selection.image), batches=rollout.batches
        )
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
        _move(rollout, "start")
        return rollout

    return atomic_with_retry(work)


def rollout_pause(*, rollout_id, actor=None) -> Rollout:
    """running -> paused: no further node starts; upgrades in flight finish."""

    def work():
        rollout = _lock(rollout_id)
        _move(rollout, "pause", reason="paused by support")
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
        _move(rollout, "resume")
        return rollout

    return atomic_with_retry(work)


def rollout_abort(*, rollout_id, actor=None) -> Rollout:
    """Any active state -> aborted: no new node starts, upgrades in flight finish (their rows
    still take the agents' results); the rollout lets go of its nodes."""

    def work():
        rollout = _lock(rollout_id)
        _move(rollout, "abort", reason="aborted by support")
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
    pending nodes are upgraded one by one (each upgrade commits with its row's move); when every
    row of the batch is final, the batch ends (halted / paused after the canary / completed /
    next batch)."""
    atomic_with_retry(lambda: _close_stale_rows(rollout_id))
    while atomic_with_retry(lambda: _step(rollout_id)) in MOVED_ON:
        pass
    return atomic_with_retry(lambda: _arm_tick(rollout_id))


#: What a step did when the next step may have work at once.
MOVED_ON = {"upgraded", "refused", "deferred", "next_batch"}


def _close_stale_rows(rollout_id) -> None:
    rollout = _lock(rollout_id)
    if rollout.state != RolloutState.RUNNING:
        return
    seconds = rollout.result_timeout_seconds
    RolloutNode.objects.filter(
        rollout=rollout,
        status=RolloutNodeStatus.UPGRADING,
        upgraded_at__lt=timezone.now() - timedelta(seconds=seconds),
    ).update(status=RolloutNodeStatus.FAILED, reason=f"no result within {seconds} s")
    # Support upgraded the node by hand while its rollout command was pending (§2 supersedes it):
    # the rollout lets go of it rather than wait for a result that cannot come.
    superseded = Command.objects.filter(pk=OuterRef("command_id"), status=CommandStatus.SUPERSEDED)
    RolloutNode.objects.filter(Exists(superseded), rollout=rollout, status=RolloutNodeStatus.UPGRADING).update(
        status=RolloutNodeStatus.SKIPPED, reason="superseded by another change of the node", holds_node=False
    )


def _arm_tick(rollout_id) -> str:
    """While running, keeps one delayed advance queued (timeouts are noticed without agents)."""
    rollout = _lock(rollout_id)
    now = timezone.now()
    if rollout.state == RolloutState.RUNNING and (rollout.tick_due_at is None or rollout.tick_due_at <= now):
        tick = timedelta(seconds=settings.ROLLOUT_TICK_SECONDS)
        rollout.tick_due_at = now + tick
        rollout.save(update_fields=["tick_due_at"])
        enqueue_advance(rollout.pk, delay=tick)
    return rollout.state


def _step(rollout_id) -> str:
    rollout = _lock(rollout_id)
    if rollout.state != RolloutState.RUNNING:
        return rollout.state
    pending = list(
        RolloutNode.objects.filter(
            rollout=rollout, batch=rollout.current_batch, status=RolloutNodeStatus.PENDING
        ).order_by("position")
    )
    if pending:
        busy = dict(
            Command.objects.filter(node_id__in=[row.node_id for row in pending], status__in=OPEN_STATUSES).values_list(
                "node_id", "id"
            )
        )
        for row in pending:
            if row.node_id not in busy:
                return _upgrade_row(rollout, row)
            if not row.reason:  # not yet deferred once
                return _defer_row(rollout, row, busy[row.node_id])
        return "waiting"  # on open commands of nodes deferred once already
    if RolloutNode.objects.filter(
        rollout=rollout, batch=rollout.current_batch, status=RolloutNodeStatus.UPGRADING
    ).exists():
        return "waiting"
    return _end_batch(rollout)


def _defer_row(rollout: Rollout, row: RolloutNode, command_id) -> str:
    """A node with an open command when its batch starts moves to the next batch (one is added
    after the last if needed). It moves once: in its new batch, the batch waits for it."""
    later = rollout.current_batch + 1
    if later > rollout.batches:
        rollout.batches = later
        rollout.save(update_fields=["batches"])
    reason = f"command {command_id} was open when batch {rollout.current_batch} started; moved to batch {later}"
    _set_row(row, batch=later, reason=reason)
    return "deferred"


def _upgrade_row(rollout: Rollout, row: RolloutNode) -> str:
    """Upgrades one pending node of the current batch; its row moves in the same transaction."""
    try:
        outcome = node_upgrade(
            node_id=row.node_id, image_id=rollout.image_id, actor=rollout.creator, source=Source.ROLLOUT
        )
    except NotFound:
        _set_row(row, status=RolloutNodeStatus.SKIPPED, reason="deleted", holds_node=False)
        return "refused"
    except Busy:
        raise
    except ApplicationError as error:  # the plan went stale: refused, not a failure
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


def _end_batch(rollout: Rollout) -> str:
    """Every row of the current batch is final: decide, once per batch, what comes next. A batch
    that ended halted or paused moves on when resumed (it never pauses after the canary again)."""
    if rollout.ended_batch < rollout.current_batch:
        rollout.ended_batch = rollout.current_batch
        rollout.save(update_fields=["ended_batch"])
        failures = rollout_failures(rollout.pk)
        if failures >= rollout.max_failures:
            _move(
                rollout,
                "halt",
                reason=f"{failures} failed or rolled-back node(s) reached max_failures ({rollout.max_failures}) "
                f"when batch {rollout.current_batch} ended.",
            )
            return "halted"
        if rollout.current_batch == 1 and rollout.canary and rollout.pause_after_canary:
            _move(rollout, "pause", reason="paused after the canary batch")
            return "paused"
    if rollout.current_batch >= rollout.batches:
        _move(rollout, "complete")
        return "completed"
    rollout.current_batch += 1
    rollout.save(update_fields=["current_batch"])
    return "next_batch"


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
