"""What other services call inside their own transactions so that rollouts follow: the agent
lifecycle when a node_upgrade command closes (result or cancel), node_delete when a node goes. Each writes the
rollout-node rows by UPDATE (never locking the rollout's row: hosts.locks' order) and enqueues
the rollout's advance in the caller's transaction. They receive nodes.changes.signals (connected
when nodes' AppConfig.ready() imports this module): nodes.changes and nodes.agent do not import rollouts."""

from datetime import timedelta

from django.dispatch import receiver
from django.utils import timezone

from nodes.changes.signals import command_closed, node_deleted
from nodes.rollouts.models import RolloutNode, RolloutNodeStatus


def enqueue_advance(rollout_id, *, delay: timedelta | None = None) -> None:
    """Enqueues the rollout's next step. With the database backend this INSERTs the task row in
    the caller's transaction: it exists exactly when the change that made it due commits."""
    from nodes.rollouts.tasks import advance_rollout  # tasks import these services

    task = advance_rollout if delay is None else advance_rollout.using(run_after=timezone.now() + delay)
    task.enqueue(str(rollout_id))


@receiver(command_closed, dispatch_uid="rollouts.rollout_upgrade_closed")
def rollout_upgrade_closed(*, command, node, **_) -> None:
    """A node_upgrade command closed (the agent's result, or a cancel): the rollout row waiting
    on it takes its final status and its rollout's advance is enqueued, in the caller's
    transaction. succeeded -> succeeded; failed -> failed; rolled_back -> rolled_back, or failed
    when the rollback could not be applied (the node stayed `failed`); cancelled -> rolled_back
    when the node was put back, else failed. A row already final (timed out) keeps its status:
    a late result still applies to the node (§9), not to the row."""
    if command.kind != "node_upgrade":
        return
    put_back = node is not None and node.state == "running"
    status, reason = {
        "succeeded": (RolloutNodeStatus.SUCCEEDED, ""),
        "failed": (RolloutNodeStatus.FAILED, command.message),
        "rolled_back": (
            (RolloutNodeStatus.ROLLED_BACK, command.message)
            if put_back
            else (RolloutNodeStatus.FAILED, "the host rolled back, but the rollback could not be applied")
        ),
        "cancelled": (
            (RolloutNodeStatus.ROLLED_BACK, "cancelled by support; the node is back on its image")
            if put_back
            else (RolloutNodeStatus.FAILED, "cancelled by support while its host worked on it")
        ),
    }.get(command.status, (RolloutNodeStatus.FAILED, f"command {command.status}"))
    rows = RolloutNode.objects.filter(command_id=command.pk)
    if rows.filter(status=RolloutNodeStatus.UPGRADING).update(status=status, reason=reason):
        for rollout_id in rows.values_list("rollout_id", flat=True).distinct():
            enqueue_advance(rollout_id)


@receiver(node_deleted, dispatch_uid="rollouts.rollout_node_deleted")
def rollout_node_deleted(*, node_id, **_) -> None:
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
