"""Reads of rollouts for the entry points (API, admin, CLI)."""

import uuid

from config.errors import NotFound
from nodes.rollouts.models import Rollout


def rollout_by_id(ref) -> Rollout:
    """The rollout with this id (`not_found` for anything else, a malformed id included)."""
    try:
        return Rollout.objects.select_related("image", "creator").get(pk=uuid.UUID(str(ref)))
    except (ValueError, Rollout.DoesNotExist):
        raise NotFound(f"No rollout with id {ref}.") from None
