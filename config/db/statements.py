"""Single-row writes whose SQL is built once per process, with values prepared by the model's
own fields (so the same statement serves PostgreSQL and the quick start's SQLite).

The upgrade's hot path writes a counter delta, a node, a NodeLog and a Command per call;
compiled by the ORM each time, those four statements cost about 1.5 ms of CPU, here about
0.3 ms (docs/performance.md). Each helper writes exactly the columns it is given.

`write_together` sends several such writes as ONE statement on PostgreSQL (a data-modifying
CTE): one round trip instead of four or five, the largest cost left in an upgrade."""

import functools
from collections.abc import Sequence

from django.db import connection

from config.db.prepared import prepared_cursor


def _quoted(name: str) -> str:
    return connection.ops.quote_name(name)


@functools.cache
def _insert_sql(model, names: tuple[str, ...]) -> str:
    columns = ", ".join(_quoted(model._meta.get_field(name).column) for name in names)
    return f"INSERT INTO {_quoted(model._meta.db_table)} ({columns}) VALUES ({', '.join(['%s'] * len(names))})"


@functools.cache
def _update_sql(model, names: tuple[str, ...], delta: bool) -> str:
    def assignment(name):
        column = _quoted(model._meta.get_field(name).column)
        return f"{column} = {column} + %s" if delta else f"{column} = %s"

    sets = ", ".join(assignment(name) for name in names)
    return f"UPDATE {_quoted(model._meta.db_table)} SET {sets} WHERE {_quoted(model._meta.pk.column)} = %s"


def _prepared(model, values: dict) -> list:
    return [model._meta.get_field(name).get_db_prep_save(value, connection) for name, value in values.items()]


def _execute(sql: str, params: list) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def insert_row(model, **values) -> None:
    """INSERT one row of `model` with these field values (defaults are not applied: pass them)."""
    _execute(_insert_sql(model, tuple(values)), _prepared(model, values))


def update_row(model, pk, **values) -> None:
    """UPDATE the row `pk` of `model`, setting these fields."""
    _execute(_update_sql(model, tuple(values), False), [*_prepared(model, values), _prepared_pk(model, pk)])


def add_to_row(model, pk, **deltas: int) -> None:
    """UPDATE the row `pk` of `model` with `column = column + delta` for each field: the change
    is applied by the database to the value it holds, never a value read earlier."""
    _execute(_update_sql(model, tuple(deltas), True), [*deltas.values(), _prepared_pk(model, pk)])


def _prepared_pk(model, pk):
    return model._meta.pk.get_db_prep_value(pk, connection)


# ---------------------------------------------------------------------------------------------
# Several writes in one statement


def _assignments(model, names, delta: bool) -> str:
    def assignment(name):
        column = _quoted(model._meta.get_field(name).column)
        return f"{column} = {column} + %s" if delta else f"{column} = %s"

    return ", ".join(assignment(name) for name in names)


@functools.cache
def _together_sql(guard, add, update, inserts) -> str:
    """The CTE of write_together, from (model, field names...) keys. Every write is conditioned
    on `ok`, which is true when the guard changed its row (or there is no guard). Reading `ok`
    runs the guard first, so an INSERT that depends on it (a new open command after the old one
    closed) sees the guard's change. The statement returns `ok`."""
    parts = []
    if guard is not None:
        model, names, where = guard
        conditions = "".join(f" AND {_quoted(model._meta.get_field(name).column)} = %s" for name in where)
        parts.append(
            f"guard AS (UPDATE {_quoted(model._meta.db_table)} SET {_assignments(model, names, False)}"
            f" WHERE {_quoted(model._meta.pk.column)} = %s{conditions} RETURNING 1)"
        )
        parts.append("ok AS (SELECT EXISTS (SELECT 1 FROM guard) AS ok)")
    else:
        parts.append("ok AS (SELECT true AS ok)")
    for label, key, delta in (("added", add, True), ("updated", update, False)):
        if key is not None:
            model, names = key
            parts.append(
                f"{label} AS (UPDATE {_quoted(model._meta.db_table)} SET {_assignments(model, names, delta)}"
                f" WHERE {_quoted(model._meta.pk.column)} = %s AND (SELECT ok FROM ok) RETURNING 1)"
            )
    for number, (model, names) in enumerate(inserts):
        fields = [model._meta.get_field(name) for name in names]
        columns = ", ".join(_quoted(field.column) for field in fields)
        values = ", ".join(f"CAST(%s AS {field.cast_db_type(connection)})" for field in fields)
        parts.append(
            f"inserted_{number} AS (INSERT INTO {_quoted(model._meta.db_table)} ({columns})"
            f" SELECT {values} FROM ok WHERE ok.ok RETURNING 1)"
        )
    return "WITH " + ", ".join(parts) + " SELECT ok FROM ok"


def write_together(
    *,
    guard: tuple | None = None,
    add: tuple | None = None,
    update: tuple | None = None,
    inserts: Sequence[tuple] = (),
) -> bool:
    """Writes rows together, in this order: the `guard` (model, pk, values, where): an UPDATE of
    `values` on the row `pk` if its fields still equal `where` — when it changes no row, nothing
    else is written and False is returned —; `add` (model, pk, deltas) as in add_to_row;
    `update` (model, pk, values) as in update_row; `inserts` [(model, values), ...] as in
    insert_row. True when written.

    On PostgreSQL this is ONE statement (a data-modifying CTE, _together_sql), built once per
    shape; elsewhere (the quick start's SQLite) one statement per write, the guard first."""
    if connection.vendor != "postgresql":
        if guard is not None:
            model, pk, values, where = guard
            if not _guarded_update(model, pk, values, where):
                return False
        if add is not None:
            add_to_row(add[0], add[1], **add[2])
        if update is not None:
            update_row(update[0], update[1], **update[2])
        for model, values in inserts:
            insert_row(model, **values)
        return True

    params = []
    guard_key = add_key = update_key = None
    if guard is not None:
        model, pk, values, where = guard
        guard_key = (model, tuple(values), tuple(where))
        params += [*_prepared(model, values), _prepared_pk(model, pk), *_prepared(model, where)]
    if add is not None:
        model, pk, deltas = add
        add_key = (model, tuple(deltas))
        params += [*deltas.values(), _prepared_pk(model, pk)]
    if update is not None:
        model, pk, values = update
        update_key = (model, tuple(values))
        params += [*_prepared(model, values), _prepared_pk(model, pk)]
    for model, values in inserts:
        params += _prepared(model, values)
    insert_keys = tuple((model, tuple(values)) for model, values in inserts)
    with prepared_cursor() as cursor:
        cursor.execute(_together_sql(guard_key, add_key, update_key, insert_keys), params)
        return cursor.fetchone()[0]


def _guarded_update(model, pk, values: dict, where: dict) -> bool:
    sql = _update_sql(model, tuple(values), False) + "".join(
        f" AND {_quoted(model._meta.get_field(name).column)} = %s" for name in where
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*_prepared(model, values), _prepared_pk(model, pk), *_prepared(model, where)])
        return cursor.rowcount == 1
