"""What other services call inside their own transactions so that rollouts follow: the agent
lifecycle when a node_upgrade command closes, node_delete when a node goes. Each writes the
rollout-node rows by UPDATE (never locking the rollout's row: hosts.locks' order) and enqueues
the rollout's advance in the caller's transaction. No import of nodes.services (it calls us)."""

from datetime import timedelta

from django.utils import timezone

from nodes.rollouts.models import RolloutNode, RolloutNodeStatus


def enqueue_advance(rollout_id, *, delay: timedelta | None = None) -> None:
    """Enqueues the rollout's next step. With the database backend this INSERTs the task row in
    the caller's transaction: it exists exactly when the change that made it due commits."""
    from nodes.rollouts.tasks import advance_rollout  # tasks import these services

    task = advance_rollout if delay is None else advance_rollout.using(run_after=timezone.now() + delay)
    task.enqueue(str(rollout_id))


def rollout_command_closed(*, command_id, status: str, reason: str = "") -> None:
    """The agent's result (or a cancel) closed a node_upgrade command: the rollout row waiting on
    it takes its final status, and its rollout's advance is enqueued, in the caller's
    transaction. A row already final (timed out) keeps its status: a late result still applies
    to the node (§9), not to the row."""
    rollout_ids = list(
        RolloutNode.objects.filter(command_id=command_id, status=RolloutNodeStatus.UPGRADING).values_list(
            "rollout_id", flat=True
        )
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
