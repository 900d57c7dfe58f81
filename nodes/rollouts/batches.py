"""Who is in the current batch as it starts, under the rollout's row lock (called by the step of
nodes.rollouts.services): nodes with someone else's open command move to the next batch, and
wait there at most `result_timeout_seconds` (then `skipped` with the reason); the canary batch
holds `canary` nodes that are actually upgraded — a canary that is busy, refused or gone gives
its place to the next ready node of a later batch."""

from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone

from nodes.models import OPEN_STATUSES, Command
from nodes.rollouts.models import Rollout, RolloutNode, RolloutNodeStatus

#: Rows that hold a place in the canary batch: to be upgraded, being upgraded, or upgraded.
HOLDS_A_PLACE = (
    RolloutNodeStatus.PENDING,
    RolloutNodeStatus.UPGRADING,
    RolloutNodeStatus.SUCCEEDED,
    RolloutNodeStatus.FAILED,
    RolloutNodeStatus.ROLLED_BACK,
)
UPGRADED = (RolloutNodeStatus.SUCCEEDED, RolloutNodeStatus.FAILED, RolloutNodeStatus.ROLLED_BACK)
#: Later rows looked at, beyond the places to fill, for a ready node to stand in for a canary.
LOOKAHEAD = 50


@dataclass(frozen=True)
class BatchLook:
    ready: list  # row ids to upgrade now
    moved: bool  # rows left the batch (deferred, skipped): look again
    waiting: bool  # deferred rows wait on someone else's open command, within their deadline


def _open_commands(node_ids) -> dict:
    if not node_ids:
        return {}
    return dict(Command.objects.filter(node_id__in=node_ids, status__in=OPEN_STATUSES).values_list("node_id", "id"))


def batch_start(rollout: Rollout) -> BatchLook:
    """The current batch's pending rows sorted out: ready ones, busy ones deferred (once) or,
    past their deadline, skipped; and in the canary batch, places left by busy, refused or
    deleted canaries filled from later batches."""
    now = timezone.now()
    pending = list(
        RolloutNode.objects.filter(rollout=rollout, batch=rollout.current_batch, status=RolloutNodeStatus.PENDING)
        .order_by("position")
        .values_list("pk", "node_id", "deferred_at")
    )
    busy = _open_commands([node_id for _, node_id, _ in pending])
    deadline = now - timedelta(seconds=rollout.result_timeout_seconds)
    fresh, overdue, waiting, ready = [], [], False, []
    for pk, node_id, deferred_at in pending:
        if node_id not in busy:
            ready.append(pk)
        elif deferred_at is None:
            fresh.append((pk, busy[node_id]))
        elif deferred_at < deadline:
            overdue.append((pk, busy[node_id]))
        else:
            waiting = True
    _defer(rollout, fresh, now)
    _skip_overdue(rollout, overdue)
    if rollout.canary and rollout.current_batch == 1 and not rollout.ended_batch:  # the canary batch, not yet ended
        ready += _fill_canary(rollout)
    return BatchLook(ready=ready, moved=bool(fresh or overdue), waiting=waiting)


def _defer(rollout: Rollout, rows: list, now) -> None:
    """Nodes with an open command when their batch starts move to the next batch (one is added
    after the last if needed). A node moves once: in its new batch, the batch waits for it, at
    most `result_timeout_seconds` from now."""
    if not rows:
        return
    later = rollout.current_batch + 1
    if later > rollout.batches:
        rollout.batches = later
        rollout.save(update_fields=["batches"])
    for row_pk, command_id in rows:
        reason = f"command {command_id} was open when batch {rollout.current_batch} started; moved to batch {later}"
        RolloutNode.objects.filter(pk=row_pk).update(batch=later, reason=reason, deferred_at=now)


def _skip_overdue(rollout: Rollout, rows: list) -> None:
    """Deferred rows whose node's command is still open past the deadline: skipped, the node let go."""
    seconds = rollout.result_timeout_seconds
    for row_pk, command_id in rows:
        RolloutNode.objects.filter(pk=row_pk, status=RolloutNodeStatus.PENDING).update(
            status=RolloutNodeStatus.SKIPPED,
            reason=f"command {command_id} stayed open more than {seconds} s after the node was deferred; skipped",
            holds_node=False,
        )


def _fill_canary(rollout: Rollout) -> list:
    """Moves the next ready pending rows of later batches (selection order) into the canary batch
    until it holds `canary` rows to be, being or already upgraded; returns the rows moved."""
    places = rollout.canary - RolloutNode.objects.filter(rollout=rollout, batch=1, status__in=HOLDS_A_PLACE).count()
    if places <= 0:
        return []
    candidates = list(
        RolloutNode.objects.filter(rollout=rollout, batch__gt=1, status=RolloutNodeStatus.PENDING)
        .order_by("position")
        .values_list("pk", "node_id", "batch")[: places + LOOKAHEAD]
    )
    busy = _open_commands([node_id for _, node_id, _ in candidates])
    chosen = [(pk, batch) for pk, node_id, batch in candidates if node_id not in busy][:places]
    for pk, batch in chosen:
        RolloutNode.objects.filter(pk=pk).update(
            batch=1, reason=f"moved from batch {batch} to the canary batch, for a canary busy, refused or gone"
        )
    return [pk for pk, _ in chosen]


def canary_upgraded(rollout: Rollout) -> bool:
    """Whether a node of the canary batch was actually upgraded (a pause after it judges something)."""
    return RolloutNode.objects.filter(rollout=rollout, batch=1, status__in=UPGRADED).exists()
