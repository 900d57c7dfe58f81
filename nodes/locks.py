"""The upgrade's locked read: ONE statement that locks a node and its host — node, then host,
the order hosts.locks sets for every writer — and reads both images with their properties,
holding FOR KEY SHARE on the images' rows (share_image) until the upgrade commits.

It is hand-written SQL because it is the hot path of every upgrade: compiled by the ORM it took
two queries and about 2 ms of CPU, here one query and a tenth of that (docs/performance.md).
Values pass through Django's own field converters, so it reads the same on SQLite.
"""

import functools

from django.db import connection

from config.units import RESOURCES
from hosts.models import Host
from nodes.models import Image, ImageProperty, Node
from nodes.resources import ImageSpec, PropertySpec, Resources

_NODE = list(Node._meta.concrete_fields)
_HOST = list(Host._meta.concrete_fields)
_IMAGE = [Image._meta.get_field(name) for name in ("id", "protocol", "version", *(f"min_{r}" for r in RESOURCES))]
_PROPERTY = [ImageProperty._meta.get_field(name) for name in ("key", "default_value", *(f"add_{r}" for r in RESOURCES))]
_ALIASED = [("n", _NODE), ("h", _HOST), ("i", _IMAGE), ("p", _PROPERTY)]


@functools.cache
def _statement(lock: bool) -> str:
    columns = ", ".join(f"{alias}.{field.column}" for alias, fields in _ALIASED for field in fields)
    return (
        f"SELECT {columns} FROM {Node._meta.db_table} n"
        f" JOIN {Host._meta.db_table} h ON h.id = n.host_id"
        f" JOIN {Image._meta.db_table} i ON i.id IN (n.image_id, %s)"
        f" LEFT JOIN {ImageProperty._meta.db_table} p ON p.image_id = i.id"
        " WHERE n.id = %s ORDER BY i.id, p.key" + (" FOR NO KEY UPDATE OF n, h FOR KEY SHARE OF i" if lock else "")
    )


@functools.cache
def _converters(vendor: str, fields: tuple) -> tuple:
    """Per field: its column and the converters Django applies to it on this database (a foreign
    key's column converts as its target: a UUID on SQLite, stored as hex). Built once per vendor."""
    columns = [field.get_col(field.model._meta.db_table) for field in fields]
    return tuple(
        (column, tuple(connection.ops.get_db_converters(column) + column.get_db_converters(connection)))
        for column in columns
    )


def _converted(fields, values):
    converted = []
    for (column, converters), value in zip(_converters(connection.vendor, tuple(fields)), values, strict=True):
        for converter in converters:
            value = converter(value, column, connection)
        converted.append(value)
    return converted


def share_image(pk) -> None:
    """Holds FOR KEY SHARE on an image's row until the transaction ends, as every writer that
    places a node on an image or moves one to it does before reading the image. Changing or
    deleting an image (nodes.models) takes FOR UPDATE first, so it waits for those writers and
    then counts their nodes; they, in turn, wait for it and read the image as it committed (or
    find it gone: `not_found`), never a placement on requirements that changed under it."""
    if connection.vendor != "postgresql":  # SQLite (make run) serializes writers anyway
        return
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT 1 FROM {Image._meta.db_table} WHERE id = %s FOR KEY SHARE", [pk])


def _node_image_missing(rows) -> bool:
    image_column = len(_NODE) + len(_HOST)
    node_image = _NODE.index(Node._meta.get_field("image"))
    return all(row[image_column] != rows[0][node_image] for row in rows)


def node_with_images(node_id, image_id, *, lock: bool) -> tuple[Node | None, dict]:
    """(the node with its `host` attached — both locked when `lock` —, {image id: ImageSpec} of
    the node's image and `image_id`). The node is None when no node has that id; an image that
    does not exist is simply absent."""
    pk, image_pk = (Node._meta.pk.get_db_prep_value(value, connection) for value in (node_id, image_id))
    statement = _statement(lock and connection.features.has_select_for_update_of)
    with connection.cursor() as cursor:
        cursor.execute(statement, [image_pk, pk])
        rows = cursor.fetchall()
        if lock and rows and _node_image_missing(rows):
            # We waited for the lock while another transaction moved the node to another image:
            # PostgreSQL re-checked the join against the rows it had, so the new image's rows are
            # missing. Now that we hold the lock, the same read is consistent.
            cursor.execute(statement, [image_pk, pk])
            rows = cursor.fetchall()
    if not rows:
        return None, {}
    ends = [len(_NODE), len(_NODE) + len(_HOST), len(_NODE) + len(_HOST) + len(_IMAGE)]
    first = rows[0]
    node = Node.from_db(connection.alias, [f.attname for f in _NODE], _converted(_NODE, first[: ends[0]]))
    node.host = Host.from_db(connection.alias, [f.attname for f in _HOST], _converted(_HOST, first[ends[0] : ends[1]]))
    heads, properties = {}, {}
    for row in rows:
        image_id, protocol, version, *minimum = _converted(_IMAGE, row[ends[1] : ends[2]])
        heads[image_id] = (protocol, version, Resources(*minimum))
        key, default, *adds = row[ends[2] :]
        properties.setdefault(image_id, [])
        if key is not None:
            properties[image_id].append(PropertySpec(key, default, Resources(*(add or 0 for add in adds))))
    specs = {
        image_id: ImageSpec(image_id, protocol, version, minimum, tuple(properties[image_id]))
        for image_id, (protocol, version, minimum) in heads.items()
    }
    return node, specs
