"""The locked reads of the node's writers, each ONE statement: the upgrade's (a node and its
host — node, then host, the order hosts.locks sets for every writer — with both images and
their properties, holding FOR KEY SHARE on the images' rows (share_image) until the upgrade
commits, and the node's open command) and the agent outcome's (a command with its node and
host, locked node, host, command).

It is hand-written SQL because it is the hot path of every upgrade: compiled by the ORM it took
two queries and about 2 ms of CPU, here one query and a tenth of that (docs/performance.md).
Values pass through Django's own field converters, so it reads the same on SQLite.
"""

import functools

from django.db import connection

from config.db.prepared import prepared_cursor
from config.http.metrics import LOCK_WAIT_SECONDS, timed
from config.units import RESOURCES
from hosts.models import Host
from nodes.models import OPEN_STATUSES, Command, CommandStatus, Image, ImageProperty, Node, NodeState
from nodes.resources import ImageSpec, PropertySpec, Resources

_NODE = list(Node._meta.concrete_fields)
_HOST = list(Host._meta.concrete_fields)
_IMAGE = [Image._meta.get_field(name) for name in ("id", "protocol", "version", *(f"min_{r}" for r in RESOURCES))]
_PROPERTY = [ImageProperty._meta.get_field(name) for name in ("key", "default_value", *(f"add_{r}" for r in RESOURCES))]
# In the model's field order: Model.from_db() takes a subset of fields in that order.
_COMMAND = [field for field in Command._meta.concrete_fields if field.name in ("id", "kind", "status", "payload")]
_COMMAND_STATUS = _COMMAND.index(Command._meta.get_field("status"))
_ALIASED = [("n", _NODE), ("h", _HOST), ("i", _IMAGE), ("p", _PROPERTY), ("c", _COMMAND)]
_OPEN = ", ".join(f"'{status}'" for status in sorted(OPEN_STATUSES))
_WITH_OPEN_COMMAND = frozenset({NodeState.CREATING, NodeState.UPGRADING})


@functools.cache
def _statement(lock: bool) -> str:
    columns = ", ".join(f"{alias}.{field.column}" for alias, fields in _ALIASED for field in fields)
    return (
        f"SELECT {columns} FROM {Node._meta.db_table} n"
        f" JOIN {Host._meta.db_table} h ON h.id = n.host_id"
        f" JOIN {Image._meta.db_table} i ON i.id IN (n.image_id, %s)"
        f" LEFT JOIN {ImageProperty._meta.db_table} p ON p.image_id = i.id"
        f" LEFT JOIN {Command._meta.db_table} c ON c.node_id = n.id AND c.status IN ({_OPEN})"
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


def share_image_if_exists(pk) -> bool:
    """share_image for a writer that moves a node back onto an image it no longer holds (a
    rollback's `from`), telling whether the image still exists."""
    lock = " FOR KEY SHARE" if connection.vendor == "postgresql" else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {Image._meta.db_table} WHERE id = %s{lock}",
            [Image._meta.pk.get_db_prep_value(pk, connection)],
        )
        return cursor.fetchone() is not None


def _stale(rows) -> bool:
    """Whether a read that waited for the node's lock mixes the node as it is now with rows of
    other tables as they were when the statement began (PostgreSQL re-checks only the locked
    rows): the node's image is missing, its state disagrees with its open command (every
    writer of a command's status but the ack holds the node's lock, and an open command is
    exactly what a `creating` or `upgrading` node has), or the command reads `acked` (which a
    retry_later, holding the node's lock, may have just returned to `pending`)."""
    image_column = len(_NODE) + len(_HOST)
    node_image = _NODE.index(Node._meta.get_field("image"))
    node_state = _NODE.index(Node._meta.get_field("state"))
    command_column = len(_NODE) + len(_HOST) + len(_IMAGE) + len(_PROPERTY)
    if all(row[image_column] != rows[0][node_image] for row in rows):
        return True
    if rows[0][command_column + _COMMAND_STATUS] == CommandStatus.ACKED:
        # An agent's retry_later returns an acked command to `pending` holding the node's lock
        # but without writing the node's row, so nothing tells PostgreSQL to re-check the join:
        # a read that waited for it still sees `acked`. The rare path (an acked command refuses
        # the upgrade) reads once more; the usual one stays one statement.
        return True
    return (rows[0][command_column] is not None) != (rows[0][node_state] in _WITH_OPEN_COMMAND)


def node_with_images(node_id, image_id, *, lock: bool) -> tuple[Node | None, dict, Command | None]:
    """(the node with its `host` attached — both locked when `lock` —, {image id: ImageSpec} of
    the node's image and `image_id`, the node's open command or None). The node is None when no
    node has that id; an image that does not exist is simply absent.

    The open command's `id`, `kind`, `status` and `payload` are read, not locked: a `pending`
    command may become `acked` meanwhile (the ack takes no node lock), so whoever closes it
    does so with a write conditional on its status (nodes.changes.upgrade)."""
    pk, image_pk = (Node._meta.pk.get_db_prep_value(value, connection) for value in (node_id, image_id))
    statement = _statement(lock and connection.features.has_select_for_update_of)
    with prepared_cursor() as cursor:
        cursor.execute(statement, [image_pk, pk])
        rows = cursor.fetchall()
        if lock and rows and _stale(rows):
            # We waited for the lock while another transaction moved the node to another image
            # or changed its command: PostgreSQL re-checked the joins against the rows it had.
            # Now that we hold the lock, the same read is consistent.
            cursor.execute(statement, [image_pk, pk])
            rows = cursor.fetchall()
    if not rows:
        return None, {}, None
    ends = [len(_NODE), len(_NODE) + len(_HOST), len(_NODE) + len(_HOST) + len(_IMAGE)]
    ends.append(ends[2] + len(_PROPERTY))
    first = rows[0]
    node = Node.from_db(connection.alias, [f.attname for f in _NODE], _converted(_NODE, first[: ends[0]]))
    node.host = Host.from_db(connection.alias, [f.attname for f in _HOST], _converted(_HOST, first[ends[0] : ends[1]]))
    heads, properties = {}, {}
    for row in rows:
        image_id, protocol, version, *minimum = _converted(_IMAGE, row[ends[1] : ends[2]])
        heads[image_id] = (protocol, version, Resources(*minimum))
        key, default, *adds = row[ends[2] : ends[3]]
        properties.setdefault(image_id, [])
        if key is not None:
            properties[image_id].append(PropertySpec(key, default, Resources(*(add or 0 for add in adds))))
    specs = {
        image_id: ImageSpec(image_id, protocol, version, minimum, tuple(properties[image_id]))
        for image_id, (protocol, version, minimum) in heads.items()
    }
    command = None
    if first[ends[3]] is not None:
        command = Command.from_db(
            connection.alias, [f.attname for f in _COMMAND], _converted(_COMMAND, first[ends[3] :])
        )
        command.node_id, command.host_id = node.pk, node.host_id
    return node, specs, command


_COMMAND_ALL = list(Command._meta.concrete_fields)


@functools.cache
def _command_statement(by_host: bool, lock: bool) -> str:
    columns = ", ".join(
        f"{alias}.{field.column}"
        for alias, fields in (("n", _NODE), ("h", _HOST), ("c", _COMMAND_ALL))
        for field in fields
    )
    # The OF list sets the order the rows are locked in: node, then host (hosts.locks), then command.
    return (
        f"SELECT {columns} FROM {Node._meta.db_table} n"
        f" JOIN {Host._meta.db_table} h ON h.id = n.host_id"
        f" JOIN {Command._meta.db_table} c ON c.node_id = n.id"
        " WHERE c.id = %s"
        + (" AND c.host_id = %s" if by_host else "")
        + (" FOR NO KEY UPDATE OF n, h, c" if lock else "")
    )


def command_with_node(command_id: int, host_id=None) -> tuple[Command | None, Node | None]:
    """Locks a command with its node and the node's host — node, host, command: the lock order
    of hosts.locks, in one statement — and returns (command, node with `host` attached). A
    command whose node no longer exists (a `node_delete`, or one its deletion superseded) is
    locked alone: (command, None). (None, None) when no command has that id (or, with
    `host_id`, none of that host's)."""
    pk = Command._meta.pk.get_db_prep_value(command_id, connection)
    params = [pk]
    if host_id is not None:
        params.append(Host._meta.pk.get_db_prep_value(host_id, connection))
    statement = _command_statement(host_id is not None, connection.features.has_select_for_update_of)
    with timed(LOCK_WAIT_SECONDS), prepared_cursor() as cursor:
        cursor.execute(statement, params)
        row = cursor.fetchone()
    if row is None:
        scope = {"pk": command_id} if host_id is None else {"pk": command_id, "host_id": host_id}
        with timed(LOCK_WAIT_SECONDS):
            return Command.objects.select_for_update(no_key=True).filter(**scope).first(), None
    ends = [len(_NODE), len(_NODE) + len(_HOST)]
    node = Node.from_db(connection.alias, [f.attname for f in _NODE], _converted(_NODE, row[: ends[0]]))
    node.host = Host.from_db(connection.alias, [f.attname for f in _HOST], _converted(_HOST, row[ends[0] : ends[1]]))
    command = Command.from_db(
        connection.alias, [f.attname for f in _COMMAND_ALL], _converted(_COMMAND_ALL, row[ends[1] :])
    )
    return command, node


def model_from_row(model, fields: list, values):
    """An instance of `model` from raw column values of `fields` (in the model's field order),
    converted as the ORM converts them on this database."""
    return model.from_db(connection.alias, [f.attname for f in fields], _converted(fields, values))
