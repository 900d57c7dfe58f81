"""The recording half of §13: the trigger function and row triggers the migrations install,
their WHEN (Nodefleet's mark or role) and the COMMENT that says since when they record."""

import json
import re
from collections.abc import Iterable
from datetime import UTC

from django.conf import settings
from django.db import connection
from django.utils import timezone

from hosts.models import Host, OutsideWrite

#: The startup option that marks a connection as Nodefleet's (config/settings.py sets it).
MARK = "nodefleet.app"
MARK_OPTION = f"-c {MARK}=1"

FUNCTION = "nodefleet_record_outside_write"
TRIGGER = "nodefleet_outside_write"

#: The most recent outside writes of one host the audit lists under its findings.
LISTED_PER_HOST = 50
#: Hosts (and node findings) looked up per query of the audit's join.
BATCH = 500

#: What the triggers track once the columns exist (§13): on hosts_host the capacity of §1 and the
#: four counters, then the capacity model of §11; on nodes_node its host and allocation. The
#: migration installs those the tables have then; `manage.py migrate` (post_migrate,
#: reinstall_if_needed) extends the triggers to every one the tables have since, so a migration
#: that adds one of them is followed without another step.
HOST_COLUMNS = (
    "cpu_cores",
    "memory_bytes",
    "disk_bytes",
    "node_count",
    "node_cpu_cores",
    "node_memory_bytes",
    "node_disk_bytes",
    "reserved_cpu_cores",
    "reserved_memory_bytes",
    "reserved_disk_bytes",
    "cpu_allocation_ratio",
    "memory_allocation_ratio",
    "disk_allocation_ratio",
    "max_nodes",
    "region",
    "scheduling",
)
NODE_COLUMNS = ("host_id", "cpu_cores", "memory_bytes", "disk_bytes")

_ROLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_$.-]{0,62}$")

_FUNCTION_SQL = """
CREATE OR REPLACE FUNCTION {function}() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = {schema}, pg_temp AS $body$
DECLARE
  old_row jsonb := CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END;
  new_row jsonb := CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END;
  row_now jsonb := coalesce(new_row, old_row);
  host_column text := TG_ARGV[0];
  changed jsonb;
BEGIN
  SELECT jsonb_object_agg(name, jsonb_build_object('old', old_row -> name, 'new', new_row -> name))
    INTO changed
    FROM unnest(TG_ARGV[1:]) AS name
   WHERE (old_row -> name) IS DISTINCT FROM (new_row -> name);
  IF changed IS NULL THEN
    RETURN NULL;  -- an UPDATE that set the tracked columns to what they held
  END IF;
  INSERT INTO {record} ("table", "operation", "row_id", "host_id", "from_host_id", "changes",
                        "session_user", "application_name", "client_addr", "transaction_id", "created_at")
  VALUES (TG_TABLE_NAME, TG_OP, (row_now ->> 'id')::uuid, (row_now ->> host_column)::uuid,
          CASE WHEN old_row IS NOT NULL AND new_row IS NOT NULL
                AND (old_row ->> host_column) IS DISTINCT FROM (new_row ->> host_column)
               THEN (old_row ->> host_column)::uuid END,
          changed, session_user, coalesce(current_setting('application_name', true), ''),
          inet_client_addr(), pg_current_xact_id()::text::bigint, clock_timestamp());
  RETURN NULL;
END
$body$
"""


def _quote(name: str) -> str:
    return connection.ops.quote_name(name)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _node_model():
    return Host._meta.get_field("nodes").related_model


def _exemption(app_role: str) -> str:
    """The triggers' WHEN: true for a write that is not Nodefleet's."""
    condition = f"current_setting({_literal(MARK)}, true) IS DISTINCT FROM '1'"
    if app_role:
        condition += f" AND session_user <> {_literal(app_role)}"
    return condition


def app_role() -> str:
    """OUTSIDE_WRITES_APP_ROLE: the database role whose writes are Nodefleet's ('' for none)."""
    role = getattr(settings, "OUTSIDE_WRITES_APP_ROLE", "") or ""
    if role and not _ROLE.match(role):
        raise ValueError(f"OUTSIDE_WRITES_APP_ROLE {role!r} is not a database role name")
    return role


def install_triggers(schema_editor, *, host_columns: Iterable[str], node_columns: Iterable[str]) -> None:
    """(Re)installs the trigger function and both triggers, tracking these columns (a migration
    passes its own lists, so adding columns is one more migration calling this). Keeps the time
    recording began when the triggers were there already. PostgreSQL only; a no-op elsewhere."""
    db = schema_editor.connection
    if db.vendor != "postgresql":
        return
    host_columns, node_columns = list(host_columns), list(node_columns)
    with db.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        schema = _quote(cursor.fetchone()[0])
        previous = _recording_meta(cursor)
        function = f"{schema}.{_quote(FUNCTION)}"
        cursor.execute(
            _FUNCTION_SQL.format(
                function=function, schema=schema, record=f"{schema}.{_quote(OutsideWrite._meta.db_table)}"
            )
        )
        role = app_role()
        for model, host_column, columns in (
            (Host, "id", host_columns),
            (_node_model(), "host_id", node_columns),
        ):
            table = f"{schema}.{_quote(model._meta.db_table)}"
            arguments = ", ".join(_literal(name) for name in (host_column, *columns))
            cursor.execute(f"DROP TRIGGER IF EXISTS {_quote(TRIGGER)} ON {table}")
            cursor.execute(
                f"CREATE TRIGGER {_quote(TRIGGER)} AFTER INSERT OR DELETE OR UPDATE OF "
                f"{', '.join(_quote(name) for name in columns)} ON {table} FOR EACH ROW "
                f"WHEN ({_exemption(role)}) EXECUTE FUNCTION {function}({arguments})"
            )
        since = (previous or {}).get("since") or timezone.now().astimezone(UTC).isoformat()
        meta = {"since": since, "host_columns": host_columns, "node_columns": node_columns, "app_role": role}
        cursor.execute(f"COMMENT ON FUNCTION {function}() IS {_literal(json.dumps(meta))}")


def uninstall_triggers(schema_editor, *args) -> None:
    """Drops both triggers and the function (the migration's reverse). PostgreSQL only."""
    db = schema_editor.connection
    if db.vendor != "postgresql":
        return
    with db.cursor() as cursor:
        for model in (Host, _node_model()):
            cursor.execute(f"DROP TRIGGER IF EXISTS {_quote(TRIGGER)} ON {_quote(model._meta.db_table)}")
        cursor.execute(f"DROP FUNCTION IF EXISTS {_quote(FUNCTION)}()")


_META_SQL = f"SELECT obj_description(to_regprocedure('{FUNCTION}()'), 'pg_proc')"


def _recording_meta(cursor) -> dict | None:
    cursor.execute(_META_SQL)
    row = cursor.fetchone()
    return json.loads(row[0]) if row and row[0] else None


def recording() -> dict | None:
    """Since when and what is recorded (the function's comment), None when nothing is: SQLite,
    or a database whose triggers are missing (restored without them). One query on PostgreSQL."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        return _recording_meta(cursor)


def _existing(cursor, table: str, columns: Iterable[str]) -> list[str]:
    cursor.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
        [table],
    )
    present = {row[0] for row in cursor.fetchall()}
    return [name for name in columns if name in present]


def install_present(schema_editor) -> None:
    """Installs the triggers tracking every column of HOST_COLUMNS / NODE_COLUMNS the tables have
    now (the migration's step; PostgreSQL only)."""
    db = schema_editor.connection
    if db.vendor != "postgresql":
        return
    with db.cursor() as cursor:
        host_columns = _existing(cursor, Host._meta.db_table, HOST_COLUMNS)
        node_columns = _existing(cursor, _node_model()._meta.db_table, NODE_COLUMNS)
    install_triggers(schema_editor, host_columns=host_columns, node_columns=node_columns)


def reinstall_if_needed(sender=None, *, using="default", **kwargs) -> None:
    """post_migrate: reinstalls the triggers when a column of HOST_COLUMNS / NODE_COLUMNS now
    exists that they do not track (a migration added it), when OUTSIDE_WRITES_APP_ROLE changed
    since they were installed, or when one is missing or disabled (a restore, ALTER TABLE ...
    DISABLE TRIGGER). So `manage.py migrate` sets them right. Nothing when recording was never
    installed (SQLite; before the migration; after its reverse)."""
    from django.db import connections

    db = connections[using]
    if db.vendor != "postgresql":
        return
    with db.cursor() as cursor:
        meta = _recording_meta(cursor)
        if meta is None:
            return
        host_columns = _existing(cursor, Host._meta.db_table, HOST_COLUMNS)
        node_columns = _existing(cursor, _node_model()._meta.db_table, NODE_COLUMNS)
        cursor.execute(
            "SELECT count(*) FROM pg_trigger WHERE tgname = %s AND tgenabled <> 'D' AND tgrelid = ANY(%s::regclass[])",
            [TRIGGER, [Host._meta.db_table, _node_model()._meta.db_table]],
        )
        complete = cursor.fetchone()[0] == 2
    wanted = (host_columns, node_columns, app_role())
    if complete and (meta["host_columns"], meta["node_columns"], meta.get("app_role", "")) == wanted:
        return
    with db.schema_editor() as schema_editor:
        install_triggers(schema_editor, host_columns=host_columns, node_columns=node_columns)
