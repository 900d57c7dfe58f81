"""Reads of nodes and images for the entry points (API, admin, commands)."""

import uuid

from config.errors import NotFound
from nodes.models import Image, Node


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
