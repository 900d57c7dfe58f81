"""Helpers the tests share: what a refusal must leave unchanged, manage.py in a subprocess
against the test database, another session holding a host's row lock, and one that makes a
deadlock."""

import os
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from django.db import connection, connections

from hosts.models import Host
from nodes.models import Command, Node, NodeLog

ROOT = Path(__file__).resolve().parents[1]


def fleet_snapshot() -> dict:
    """Everything a refused change must leave unchanged: counters, nodes, history, commands."""
    return {
        "hosts": list(Host.objects.order_by("pk").values()),
        "nodes": list(Node.objects.order_by("pk").values()),
        "logs": NodeLog.objects.count(),
        "commands": Command.objects.count(),
    }


def subprocess_env() -> dict:
    """The environment of a subprocess that should use this test run's database."""
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    return {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings_test", "DATABASE_URL": url}


def manage(*args) -> subprocess.CompletedProcess:
    """Runs manage.py in a subprocess against the test database, as a shell would."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def host_lock_held(host_pk):
    """Another session holds the host's row lock (FOR UPDATE) until the block ends."""
    return row_lock_held("hosts_host", host_pk, "FOR UPDATE")


@contextmanager
def row_lock_held(table: str, pk, mode: str, *, seconds: float = 10):
    """Another session holds a row of `table` locked (`mode`: FOR UPDATE, FOR SHARE, ...) until the
    block ends (at most `seconds`)."""
    locked, release = threading.Event(), threading.Event()

    def hold():
        other = connections.create_connection("default")
        try:
            with other.cursor() as cursor:
                cursor.execute("BEGIN")
                cursor.execute(f"SELECT 1 FROM {table} WHERE id = %s {mode}", [pk])
                locked.set()
                release.wait(seconds)
                cursor.execute("ROLLBACK")
        finally:
            other.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(5), "the other session did not get the lock"
        yield
    finally:
        release.set()
        holder.join()


@contextmanager
def round_trips():
    """The statements this thread's connection sends to PostgreSQL inside the block, BEGIN and
    COMMIT included (they never pass Django's execute wrappers): libpq's protocol trace, one
    entry per exchange the server completes (ReadyForQuery), the entry being its SQL."""
    import tempfile

    from psycopg import pq

    connection.ensure_connection()
    pgconn = connection.connection.pgconn
    sent = []
    named = {}  # prepared statement name -> its SQL (config.db.prepared), parsed in the block
    with tempfile.TemporaryFile() as trace:
        pgconn.trace(trace.fileno())
        pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        try:
            yield sent
        finally:
            pgconn.untrace()
            trace.seek(0)
            pending = None
            for line in trace.read().decode(errors="replace").splitlines():
                direction, _length, message, *rest = [*line.split("\t", 3), ""][:4]
                if direction == "F" and message in ("Query", "Parse"):
                    text = rest[0].strip()
                    if message == "Parse":  # `"statement name" "sql" ...`
                        name, text = text[1 : text.index('" "')], text[text.index('" "') + 2 :]
                        if name:
                            named[name] = text[1 : text.rindex('"')]
                    pending = text[1 : text.rindex('"')]
                elif direction == "F" and message == "Bind" and pending is None:
                    # A prepared statement run again: `"portal" "statement name" ...`, no Parse.
                    name = rest[0].split('"')[3]
                    pending = named.get(name, f"EXECUTE {name}")
                elif direction == "B" and message == "ReadyForQuery":
                    sent.append(pending)
                    pending = None


def deadlock_partner(first: tuple[str, object], then: tuple[str, object], locked: threading.Event) -> None:
    """On a connection of its own: locks the row `first` (table, pk), sets `locked`, waits until
    another transaction waits for that row, then asks for the row `then`, which that transaction
    holds. Its deadlock_timeout is 20 s, so PostgreSQL detects the deadlock on the other side and
    aborts that one (deadlock_detected); this one then gets its rows and commits."""
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute("SET LOCAL deadlock_timeout = '20s'")
            cursor.execute(f"SELECT 1 FROM {first[0]} WHERE id = %s FOR UPDATE", [first[1]])
            locked.set()
            for _ in range(250):  # until the other transaction waits for our row
                cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = 'transactionid'")
                if cursor.fetchone()[0]:
                    break
                time.sleep(0.02)
            cursor.execute(f"SELECT 1 FROM {then[0]} WHERE id = %s FOR UPDATE", [then[1]])
            cursor.execute("COMMIT")
    finally:
        other.close()
