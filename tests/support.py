"""Helpers the tests share: what a refusal must leave unchanged, manage.py in a subprocess
against the test database, and another session holding a host's row lock."""

import os
import subprocess
import sys
import threading
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


@contextmanager
def host_lock_held(host_pk):
    """Another session holds the host's row lock (FOR UPDATE) until the block ends."""
    locked, release = threading.Event(), threading.Event()

    def hold():
        other = connections.create_connection("default")
        try:
            with other.cursor() as cursor:
                cursor.execute("BEGIN")
                cursor.execute("SELECT 1 FROM hosts_host WHERE id = %s FOR UPDATE", [host_pk])
                locked.set()
                release.wait(10)
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
