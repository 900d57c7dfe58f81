"""Reads of nodes and images for the entry points (API, admin, commands)."""

import uuid

from django.db.models import Q
from django.utils import timezone

from config.errors import NotFound
from nodes.models import Command, CommandKind, CommandStatus, Image, Node, NodeState

AGENT_POLL_LIMIT = 100


def _as_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def node_by_id_or_name(ref: str) -> Node:
    """A node named by its id or its name (`not_found` otherwise)."""
    pk = _as_uuid(ref)
    node = (Node.objects.filter(pk=pk) if pk else Node.objects.filter(name=ref)).first()
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


def node_commands(node_id, *, limit: int) -> list[Command]:
    """The node's newest `limit` agent commands, newest first (its timeline)."""
    return list(Command.objects.filter(node_id=node_id).select_related("host").order_by("-id")[:limit])


def revert_image(node: Node) -> Image | None:
    """The image a `failed` node ran before its last upgrade — what its host ran before (the
    upgrade command's `from` side, which a superseded command passes on) — or None when the
    node did not fail an upgrade or the image is gone."""
    if node.state != NodeState.FAILED:
        return None
    command = Command.objects.filter(node_id=node.pk).order_by("-id").only("kind", "payload").first()
    if command is None or command.kind != CommandKind.NODE_UPGRADE or not isinstance(command.payload, dict):
        return None
    side = command.payload.get("from")
    image_id = _as_uuid(side.get("image_id", "")) if isinstance(side, dict) else None
    if image_id is None or image_id == node.image_id:
        return None
    return Image.objects.filter(pk=image_id).first()


def agent_open_commands(host_id) -> list[Command]:
    """A host's open commands that are due (`not_before` past), oldest first, at most 100: one
    statement on the partial index of open commands by host."""
    due = Q(not_before__isnull=True) | Q(not_before__lte=timezone.now())
    return list(
        Command.objects.filter(due, host_id=host_id, status__in=[CommandStatus.PENDING, CommandStatus.ACKED])
        .only("id", "kind", "node_id", "payload", "status", "attempts", "created_at")
        .order_by("id")[:AGENT_POLL_LIMIT]
    )
