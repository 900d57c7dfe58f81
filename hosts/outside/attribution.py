"""The reading half of §13: recorded outside writes read back, joined to the audit's findings
(each host's window since its last repair) and written as the audit's and the command's lines."""

import json
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.apps import apps
from django.db import connection

from config.errors import InvalidInput
from config.units import RESOURCES, human_amount
from hosts.models import COUNTER_OF_RESOURCE, Host, OutsideWrite
from hosts.outside.triggers import BATCH, FUNCTION, LISTED_PER_HOST, _node_model, _quote

# -- what the audit and the command show ---------------------------------------------------------


@dataclass(frozen=True)
class Write:
    """One recorded outside write, as read back."""

    id: int
    table: str
    operation: str
    row_id: uuid.UUID
    host_id: uuid.UUID | None
    from_host_id: uuid.UUID | None
    changes: dict
    session_user: str
    application_name: str
    client_addr: str | None
    transaction_id: int
    created_at: datetime

    @classmethod
    def of(cls, record: OutsideWrite) -> "Write":
        return cls(**{name: getattr(record, name) for name in cls.__dataclass_fields__})

    @property
    def on_node(self) -> bool:
        return self.table == _node_model()._meta.db_table


@dataclass
class HostWindow:
    """The outside writes that concern one host since its last repair (or since recording
    began), newest LISTED_PER_HOST of them, and how many there are in all."""

    since: datetime | None
    since_repair: bool
    total: int = 0
    writes: list[Write] = field(default_factory=list)
    node_writes: dict[uuid.UUID, list[Write]] = field(default_factory=dict)


def timestamp(moment: datetime) -> str:
    """`2026-11-30T14:02:11Z`: UTC to the second, as the audit prints times."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _amount(column: str, value) -> str:
    if value is None:
        return "none"
    resource = column.removeprefix("node_").removeprefix("reserved_")
    if isinstance(value, int) and resource in RESOURCES:
        return f"{value} ({human_amount(resource, value)})"
    return str(value)


def changes_text(write: Write) -> str:
    """Each changed column old -> new (an insert: what it set; a delete: what it held)."""
    if write.operation == "UPDATE":
        parts = (
            f"{name} {_amount(name, change['old'])} -> {_amount(name, change['new'])}"
            for name, change in write.changes.items()
        )
    else:
        side = "new" if write.operation == "INSERT" else "old"
        parts = (f"{name} {_amount(name, change[side])}" for name, change in write.changes.items())
    return ", ".join(parts)


def write_text(write: Write) -> str:
    """`changed outside Nodefleet at 2026-11-30T14:02:11Z by database user ops (application psql,
    10.0.0.5): node_memory_bytes 17179869184 (16.0 GiB) -> 25769803776 (24.0 GiB)`."""
    application = write.application_name or "none"
    where = write.client_addr or "local socket"
    subject = "node" if write.on_node else "host"
    what = {"INSERT": f"inserted {subject} {write.row_id}: ", "DELETE": f"deleted {subject} {write.row_id}: "}.get(
        write.operation, f"node {write.row_id}: " if write.on_node else ""
    )
    return (
        f"changed outside Nodefleet at {timestamp(write.created_at)} by database user {write.session_user} "
        f"(application {application}, {where}): {what}{changes_text(write)}"
    )


def write_json(write: Write) -> dict:
    return {
        "id": write.id,
        "created_at": write.created_at.astimezone(UTC).isoformat(),
        "table": write.table,
        "operation": write.operation,
        "row_id": str(write.row_id),
        "host_id": write.host_id and str(write.host_id),
        "from_host_id": write.from_host_id and str(write.from_host_id),
        "changes": write.changes,
        "session_user": write.session_user,
        "application_name": write.application_name,
        "client_addr": write.client_addr,
        "transaction_id": write.transaction_id,
    }


def explains_counter(write: Write, counter: str) -> bool:
    """Whether `write` can have moved `counter` of its host: a write of that counter on the host
    row, or a node inserted, deleted or moved, or a node's write of the resource it sums."""
    if not write.on_node:
        return counter in write.changes or write.operation != "UPDATE"
    if write.operation != "UPDATE" or "host_id" in write.changes:
        return True
    resource = next((name for name, summed in COUNTER_OF_RESOURCE.items() if summed == counter), None)
    return resource in write.changes


def unknown_text(window: HostWindow) -> str:
    if window.since is None:
        return "cause unknown: no outside write recorded since recording began"
    began = "the host's last repair" if window.since_repair else "recording began"
    return f"cause unknown: no outside write recorded since {timestamp(window.since)} ({began})"


def more_text(window: HostWindow, host_name: str) -> str | None:
    """A line when the host has more outside writes than the audit lists."""
    if window.total <= len(window.writes):
        return None
    since = f" --since {timestamp(window.since)}" if window.since else ""
    return (
        f"... the latest {len(window.writes)} of {window.total} outside writes of host {host_name} are listed; "
        f"manage.py outside_writes --host {host_name}{since} lists them all"
    )


# -- the audit's join ----------------------------------------------------------------------------

_WINDOW_SQL = """
WITH recording AS (
  SELECT obj_description(to_regprocedure('{function}()'), 'pg_proc')::jsonb AS meta
), scope AS (
  SELECT h.id, h.name, GREATEST(
      (SELECT max(r.created_at) FROM {repair} r WHERE r.host_id = h.id AND r.created_at < %(before)s),
      (SELECT max(l.created_at) FROM {nodelog} l
        WHERE l.host_id = h.id AND l.event = 'allocation_repaired' AND l.created_at < %(before)s)
    ) AS repaired_at
  FROM {host} h WHERE h.name = ANY(%(hosts)s)
), windowed AS (
  SELECT s.*, coalesce(s.repaired_at, (r.meta ->> 'since')::timestamptz) AS since, r.meta IS NOT NULL AS recorded
  FROM scope s CROSS JOIN recording r
)
SELECT s.name, s.recorded, s.repaired_at, s.since, counted.total, 'host', w.*
FROM windowed s
CROSS JOIN LATERAL (
  SELECT count(*) AS total FROM {record} o
  WHERE (o.host_id = s.id OR o.from_host_id = s.id) AND o.created_at > coalesce(s.since, '-infinity')
) counted
LEFT JOIN LATERAL (
  SELECT {columns} FROM {record} o
  WHERE (o.host_id = s.id OR o.from_host_id = s.id) AND o.created_at > coalesce(s.since, '-infinity')
  ORDER BY o.created_at DESC, o.id DESC LIMIT %(listed)s
) w ON true
UNION ALL
SELECT s.name, s.recorded, s.repaired_at, s.since, NULL, 'node', w.*
FROM windowed s
JOIN LATERAL (
  SELECT {columns} FROM {record} o
  WHERE o.row_id = ANY(%(nodes)s) AND (o.host_id = s.id OR o.from_host_id = s.id)
    AND o.created_at > coalesce(s.since, '-infinity')
  ORDER BY o.created_at DESC, o.id DESC LIMIT %(listed)s
) w ON true
"""

_COLUMNS = tuple(Write.__dataclass_fields__)


def host_windows(
    host_names: Iterable[str], node_ids: Iterable, *, before: datetime | None = None
) -> dict[str, HostWindow] | None:
    """host name -> its HostWindow, with the writes of the given nodes, in one query; None when
    nothing is recorded (the trigger function is missing). `before`: the windows as they were
    then (repairs since are ignored: what a repair run just repaired over)."""
    record = _quote(OutsideWrite._meta.db_table)
    sql = _WINDOW_SQL.format(
        repair=_quote(apps.get_model("hosts", "CounterRepair")._meta.db_table),
        nodelog=_quote(apps.get_model("nodes", "NodeLog")._meta.db_table),
        host=_quote(Host._meta.db_table),
        record=record,
        columns=", ".join(f"o.{_quote(name)}" for name in _COLUMNS),
        function=FUNCTION,
    )
    params = {
        "hosts": list(host_names),
        "nodes": list(node_ids),
        "before": before or datetime.max.replace(tzinfo=UTC),
        "listed": LISTED_PER_HOST,
    }
    windows: dict[str, HostWindow] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for name, recorded, repaired_at, since, total, kind, *values in cursor.fetchall():
            if not recorded:
                return None
            window = windows.setdefault(name, HostWindow(since=since, since_repair=repaired_at is not None))
            if kind == "host":
                window.total = total
            if values[0] is None:
                continue
            write = Write(*values[:6], _changes(values[6]), *values[7:])
            if kind == "host":
                window.writes.insert(0, write)  # newest first from the query: listed oldest first
            else:
                window.node_writes.setdefault(write.row_id, []).insert(0, write)
    return windows


def _changes(value) -> dict:
    return json.loads(value) if isinstance(value, str) else value


@dataclass(frozen=True)
class Attribution:
    """What the audit says of one drift finding's cause: the outside writes that explain it
    (empty: cause unknown) and its host's window."""

    writes: list[Write]
    window: HostWindow

    @property
    def lines(self) -> list[str]:
        """What a person reads of it: a line per write (and one when there are more than
        listed), or that the cause is unknown."""
        if not self.writes:
            return [unknown_text(self.window)]
        return [write_text(write) for write in self.writes]

    def json(self) -> list[dict]:
        return [write_json(write) for write in self.writes]


def attribution(finding, window: HostWindow) -> Attribution:
    """The writes of `window` that explain `finding`: a node's (a node field, a node's repair)
    or a host's counter(s) (a finding's `field`, a repair's changed `fields`)."""
    node_id = getattr(finding, "node_id", None)
    if node_id is not None:
        return Attribution(window.node_writes.get(node_id, []), window)
    counters = finding.fields if hasattr(finding, "fields") else [finding.field]
    explaining = [write for write in window.writes if any(explains_counter(write, name) for name in counters)]
    return Attribution(explaining, window)


def attributed(
    items: Iterable, *, is_drift, before: datetime | None = None
) -> Iterator[tuple[object, Attribution | None]]:
    """(item, its Attribution) for each item; None for what is not drift (`is_drift(item)`
    false) and for every item when nothing is recorded (SQLite; triggers missing). Items are
    looked up BATCH hosts at a time, in the order they came: one query per batch that holds
    drift, none for the rest. `before`: see host_windows."""
    postgresql = connection.vendor == "postgresql"
    pending: list = []
    hosts: set = set()

    def flush():
        drift = [item for item in pending if is_drift(item)]
        windows = None
        if postgresql and drift:
            node_ids = {item.node_id for item in drift if getattr(item, "node_id", None) is not None}
            windows = host_windows(hosts, node_ids, before=before)
        for item in pending:
            window = windows.get(item.host_name) if windows is not None and is_drift(item) else None
            yield item, (attribution(item, window) if window is not None else None)
        pending.clear()
        hosts.clear()

    for item in items:
        pending.append(item)
        if is_drift(item):
            hosts.add(item.host_name)
        if len(hosts) >= BATCH or len(pending) >= BATCH * 4:
            yield from flush()
    yield from flush()


def not_recorded_notice() -> str:
    if connection.vendor != "postgresql":
        return (
            "note: outside writes are recorded on PostgreSQL only; on this database nothing is, "
            "so no finding names a cause."
        )
    return (
        "warning: outside writes are not being recorded: the trigger function is missing "
        "(restored without triggers?); run manage.py migrate, or see docs/operations.md."
    )


# -- the list and its pruning (manage.py outside_writes, the admin) ------------------------------


def parse_time(text: str, *, option: str) -> datetime:
    """An ISO 8601 time (`2026-11-30T14:02:11Z`, a date alone is its midnight UTC); `invalid`
    naming the option otherwise."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        detail = f"{option}: {text!r} is not a time; give ISO 8601, e.g. 2026-11-30T14:02:11Z or 2026-11-30."
        raise InvalidInput(detail, errors={option.lstrip("-"): [detail]}) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def outside_writes(*, since: datetime | None = None, host_ids: Iterable | None = None) -> Iterator[Write]:
    """The recorded outside writes, oldest first, streamed: since a time, concerning some hosts."""
    records = OutsideWrite.objects.order_by("created_at", "id")
    if since is not None:
        records = records.filter(created_at__gte=since)
    if host_ids is not None:
        host_ids = list(host_ids)
        records = records.filter(host_id__in=host_ids) | records.filter(from_host_id__in=host_ids)
    return (Write.of(record) for record in records.iterator(chunk_size=2000))


def outside_writes_prune(*, before: datetime) -> int:
    """Deletes the outside writes recorded before `before`; returns how many. The only delete
    of the record (manage.py outside_writes --prune-before)."""
    return OutsideWrite.objects.filter(created_at__lt=before)._raw_delete(OutsideWrite.objects.db)
