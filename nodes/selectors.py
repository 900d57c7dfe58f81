"""Reads of nodes and images for the entry points (API, admin, commands)."""

import uuid

from django.db.models import Q
from django.utils import timezone

from config.errors import NotFound
from nodes.models import Command, CommandStatus, Image, Node

AGENT_POLL_LIMIT = 100


def _as_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def node_by_id_or_name(ref: str) -> Node:
    """A node named by its id or else by its name, even a name that reads as a UUID
    (`not_found` otherwise). One query."""
    pk = _as_uuid(ref)
    found = Node.objects.filter(Q(pk=pk) | Q(name=ref)) if pk else Node.objects.filter(name=ref)
    node = min(found[:2], key=lambda candidate: candidate.pk != pk, default=None)  # the id's match first
    if node is None:
        raise NotFound(f"No node with id or name {ref!r}.")
    return node


def image_by_id_or_label(ref: str) -> Image:
    """An image named by its id or as `protocol@version` (`not_found` otherwise)."""
    pk = _as_uuid(ref)
    if pk:
        image = Image.objects.filter(pk=pk).first()
    else:
        protocol, _, version = ref.partition("@")
        image = Image.objects.filter(protocol=protocol, version=version).first() if version else None
    if image is None:
        raise NotFound(f"No image with id or protocol@version {ref!r}.")
    return image


def agent_open_commands(host_id) -> list[Command]:
    """A host's open commands that are due (`not_before` past), oldest first, at most 100: one
    statement on the partial index of open commands by host."""
    due = Q(not_before__isnull=True) | Q(not_before__lte=timezone.now())
    return list(
        Command.objects.filter(due, host_id=host_id, status__in=[CommandStatus.PENDING, CommandStatus.ACKED])
        .only("id", "kind", "node_id", "payload", "status", "attempts", "created_at")
        .order_by("id")[:AGENT_POLL_LIMIT]
    )
