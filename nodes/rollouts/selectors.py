"""Reads of rollouts for the entry points (API, admin, CLI): a rollout by id, its rows counted by status."""

import uuid

from django.db.models import Count

from config.errors import NotFound
from nodes.rollouts.models import Rollout, RolloutNode, RolloutNodeStatus


def rollout_by_id(ref) -> Rollout:
    """The rollout with this id (`not_found` for anything else, a malformed id included)."""
    try:
        return Rollout.objects.select_related("image", "creator").get(pk=uuid.UUID(str(ref)))
    except (ValueError, Rollout.DoesNotExist):
        raise NotFound(f"No rollout with id {ref}.") from None


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
