"""Reads of nodes and images for the entry points (API, admin, commands)."""

import functools
import uuid

from django.db import connection
from django.db.models import Q
from django.utils import timezone

from config.db.prepared import prepared_cursor
from config.errors import NotFound
from hosts.models import Host
from nodes.locks import model_from_row
from nodes.models import Command, CommandKind, CommandStatus, Image, Node, NodeState

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


_POLL_HOST = [Host._meta.get_field(name) for name in ("id", "name", "agent_seen_at")]
_POLL_COMMAND = [
    field
    for field in Command._meta.concrete_fields
    if field.name in ("id", "kind", "node_id", "payload", "status", "attempts", "created_at")
]


@functools.cache
def _poll_statement() -> str:
    h, c = Host._meta.db_table, Command._meta.db_table
    columns = ", ".join([*(f"h.{f.column}" for f in _POLL_HOST), *(f"c.{f.column}" for f in _POLL_COMMAND)])
    open_statuses = ", ".join(f"'{status}'" for status in (CommandStatus.PENDING, CommandStatus.ACKED))
    return (
        f"SELECT {columns} FROM {h} h LEFT JOIN {c} c ON c.host_id = h.id AND c.status IN ({open_statuses})"
        " AND (c.not_before IS NULL OR c.not_before <= %s)"
        f" WHERE h.agent_token_digest = %s ORDER BY c.id LIMIT {AGENT_POLL_LIMIT}"
    )


def agent_poll(token_digest: str) -> tuple[Host | None, list[Command]]:
    """The agent's poll in ONE statement (the hottest request of a large fleet): the host whose
    token has this digest, and its open commands that are due (`not_before` past), oldest first,
    at most 100. (None, []) when no host has that token."""
    now = Command._meta.get_field("created_at").get_db_prep_value(timezone.now(), connection)
    with prepared_cursor() as cursor:
        cursor.execute(_poll_statement(), [now, token_digest])
        rows = cursor.fetchall()
    if not rows:
        return None, []
    split = len(_POLL_HOST)
    host = model_from_row(Host, _POLL_HOST, rows[0][:split])
    commands = [model_from_row(Command, _POLL_COMMAND, row[split:]) for row in rows if row[split] is not None]
    return host, commands
