"""Single-row writes whose SQL is built once per process, with values prepared by the model's
own fields (so the same statement serves PostgreSQL and the quick start's SQLite).

The upgrade's hot path writes a counter delta, a node, a NodeLog and a Command per call;
compiled by the ORM each time, those four statements cost about 1.5 ms of CPU, here about
0.3 ms (docs/performance.md). Each helper writes exactly the columns it is given."""

import functools

from django.db import connection


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
