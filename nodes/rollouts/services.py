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
import random
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection
from django.db.models import Exists, OuterRef, Q, Subquery
from django.utils import timezone

from config.db import atomic_with_retry
from config.errors import ApplicationError, Busy, InvalidState, NotFound
from config.http.logging import log_event
from hosts.models import Source
from nodes.changes import node_upgrade
from nodes.models import Command, CommandStatus
from nodes.rollouts.batches import batch_start, canary_upgraded
from nodes.rollouts.hooks import enqueue_advance
from nodes.rollouts.models import FAILURE_STATUSES, TRANSITIONS, Rollout, RolloutNode, RolloutNodeStatus, RolloutState
from nodes.rollouts.plan import Plan, Selection, rollout_plan
from nodes.rollouts.ticks import keep_ticking, step_failed

logger = logging.getLogger("nodes.rollouts")

CREATE_ATTEMPTS = 3


def _lock(rollout_id) -> Rollout:
    try:
        return (
            Rollout.objects.select_related("creator")
            .select_for_update(of=("self",), no_key=True)
            .get(pk=uuid.UUID(str(rollout_id)))
        )
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


#: The control actions of §10 by name, as the admin's buttons and the CLI's subcommands call them.
ROLLOUT_CONTROLS = {"start": rollout_start, "pause": rollout_pause, "resume": rollout_resume, "abort": rollout_abort}


def rollout_failures(rollout_id) -> int:
    return RolloutNode.objects.filter(rollout_id=rollout_id, status__in=FAILURE_STATUSES).count()


# ---------------------------------------------------------------------------------------------
# Advance (the background step)


def rollout_advance(*, rollout_id) -> str:
    """Moves a rollout as far as it can now, and returns its state. Idempotent: every step
    re-reads under the rollout's row lock and does nothing already done, so two workers or a
    worker restarted after a kill never upgrade a node twice.

    First the advances already queued for this rollout are folded into this one (their causes
    committed before what follows reads) and its next tick is queued (nodes.rollouts.ticks: in
    statements of their own, so a step that fails cannot take the tick with it); then, each its
    own transaction: the current batch starts (its busy nodes move to the next batch, a busy
    canary gives its place to the next ready node), its pending nodes are upgraded one by one
    (each upgrade commits with its row's move), and once every row of the batch is final the
    batch ends (halted / paused after the canary / completed / next batch). Whatever a step
    raises is recorded on the rollout (ticks.step_failed) and raised: the task fails, the tick
    queued before it tries again."""
    try:
        coalesce_advances(rollout_id)
        creator = Rollout.objects.select_related("creator").get(pk=rollout_id).creator  # the upgrades' actor
        keep_ticking(rollout_id)
        return _advance(rollout_id, creator)
    except Exception as error:
        if not connection.in_atomic_block:
            # A connection the error left dead is closed, so that recording the failure — and the
            # worker marking its task failed — run on a new one instead of failing in turn.
            connection.close_if_unusable_or_obsolete()
        step_failed(rollout_id, error)
        raise


def _advance(rollout_id, creator) -> str:
    while True:
        step = atomic_with_retry(lambda: _step(rollout_id))
        if isinstance(step, list):
            for row_pk in step:
                try:
                    done = atomic_with_retry(lambda row_pk=row_pk: _upgrade_row(rollout_id, row_pk, creator))
                except RowMoved:
                    continue
                if done == "stopped":
                    break
        elif step != "next_batch":
            return step


def coalesce_advances(rollout_id) -> int:
    """Marks this rollout's advances that are due and not yet claimed as done: the advance now
    running reads after them, so it covers what made them due (an agent result per node would
    otherwise cost a whole task run each). Returns how many."""
    from django_tasks.base import TaskResultStatus
    from django_tasks_db.models import DBTaskResult, get_date_max

    from nodes.rollouts.tasks import advance_rollout

    now = timezone.now()
    return DBTaskResult.objects.filter(
        Q(run_after=get_date_max()) | Q(run_after__lte=now),
        status=TaskResultStatus.READY,
        task_path=advance_rollout.module_path,
        args_kwargs={"args": [str(rollout_id)], "kwargs": {}},
    ).update(status=TaskResultStatus.SUCCESSFUL, started_at=now, finished_at=now, return_value="coalesced")


def _close_stale_rows(rollout: Rollout) -> None:
    """At most every half tick, whatever the rollout's state: rows past their result timeout
    fail; rows whose command someone else's upgrade superseded (support upgraded the node by hand
    meanwhile) let go of the node: no result will come."""
    now = timezone.now()
    if rollout.tick_due_at is not None and rollout.tick_due_at > now:
        return
    rollout.tick_due_at = now + timedelta(seconds=settings.ROLLOUT_TICK_SECONDS) / 2
    rollout.save(update_fields=["tick_due_at"])
    seconds = rollout.result_timeout_seconds
    upgrading = RolloutNode.objects.filter(rollout=rollout, status=RolloutNodeStatus.UPGRADING)
    upgrading.filter(upgraded_at__lt=now - timedelta(seconds=seconds)).update(
        status=RolloutNodeStatus.FAILED, reason=f"no result within {seconds} s"
    )
    superseded = Command.objects.filter(pk=OuterRef("command_id"), status=CommandStatus.SUPERSEDED)
    upgrading.filter(Exists(superseded)).update(
        status=RolloutNodeStatus.SKIPPED, reason="superseded by another change of the node", holds_node=False
    )


def _step(rollout_id):
    """One look at the current batch under the rollout's lock: the rows to upgrade now (a list
    of row ids), or what the rollout waits for or became."""
    rollout = _lock(rollout_id)
    if rollout.step_failures:  # this step succeeds (or it rolls back, this with it)
        rollout.step_failures = 0
        rollout.save(update_fields=["step_failures"])
    if rollout.state in (RolloutState.PLANNED, RolloutState.COMPLETED):
        return rollout.state  # no row upgrading
    _close_stale_rows(rollout)
    if rollout.state != RolloutState.RUNNING:
        return rollout.state
    look = batch_start(rollout)
    if look.ready:
        ready = list(look.ready)
        random.shuffle(ready)  # workers of one rollout start at different nodes
        return ready
    if look.moved:
        return "next_batch"  # rows left the batch (deferred, skipped): look again
    if (
        look.waiting
        or RolloutNode.objects.filter(
            rollout=rollout, batch=rollout.current_batch, status=RolloutNodeStatus.UPGRADING
        ).exists()
    ):
        return "waiting"  # on agents' results, or on open commands of deferred nodes (till their deadline)
    return _end_batch(rollout)


class RowMoved(Exception):
    """The row left `pending` while its node was being upgraded: the upgrade is undone."""


def _share_lock(rollout_id) -> Rollout | None:
    """The rollout, its row share-locked: upgraders hold it together (nodes upgrade in parallel),
    while a pause, abort or batch decision (FOR NO KEY UPDATE) waits for them and they for it."""
    suffix = " FOR SHARE" if connection.features.has_select_for_update else ""
    table = connection.ops.quote_name(Rollout._meta.db_table)
    pk = Rollout._meta.pk.get_db_prep_value(uuid.UUID(str(rollout_id)), connection)  # SQLite: hex
    rows = Rollout.objects.raw(f"SELECT * FROM {table} WHERE id = %s{suffix}", [pk])
    return next(iter(rows), None)


def _upgrade_row(rollout_id, row_pk, actor) -> str:
    """Upgrades one pending node of the current batch; its row moves in the same transaction.
    Workers of one rollout upgrade different nodes at once (the rollout share-locked); two on
    the same node queue on its lock, and the second finds the row no longer pending: every move
    of a row is conditional on `pending`, so the node is upgraded once. Lock order: rollout,
    node, host (node_upgrade), rollout-node row (hosts.locks)."""
    rollout = _share_lock(rollout_id)
    row = RolloutNode.objects.filter(pk=row_pk).values("node_id", "status", "batch").first()
    if rollout is None or rollout.state != RolloutState.RUNNING:
        return "stopped"
    if row is None or row["status"] != RolloutNodeStatus.PENDING or row["batch"] != rollout.current_batch:
        return "done already"
    pending = RolloutNode.objects.filter(pk=row_pk, status=RolloutNodeStatus.PENDING)
    try:
        outcome = node_upgrade(node_id=row["node_id"], image_id=rollout.image_id, actor=actor, source=Source.ROLLOUT)
    except NotFound:
        pending.update(status=RolloutNodeStatus.SKIPPED, reason="deleted", holds_node=False)
        return "refused"
    except Busy:
        raise
    except ApplicationError as error:  # the plan went stale (or another worker was first): refused
        return "refused" if pending.update(status=RolloutNodeStatus.REFUSED, reason=error.detail) else "done already"
    command_id = Command.objects.filter(node_id=row["node_id"]).order_by("-id").values("id")[:1]
    moved = pending.update(
        status=RolloutNodeStatus.UPGRADING,
        command_id=Subquery(command_id),
        upgraded_at=timezone.now(),
        **{f"new_{name}": amount for name, amount in outcome.new.items()},
    )
    if not moved:
        raise RowMoved  # rolls the whole transaction back, the upgrade with it
    return "upgraded"


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
        if rollout.current_batch == 1 and rollout.canary and rollout.pause_after_canary and canary_upgraded(rollout):
            _move(rollout, "pause", reason="paused after the canary batch")
            return "paused"
    if rollout.current_batch >= rollout.batches:
        _move(rollout, "complete")
        return "completed"
    rollout.current_batch += 1
    rollout.save(update_fields=["current_batch"])
    return "next_batch"
