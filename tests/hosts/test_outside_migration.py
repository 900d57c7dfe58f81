"""The outside-write triggers are part of the schema: `migrate` installs them, the reverse
migration drops them (and the function) cleanly, and migrating back installs them again. On a
scratch database of its own (nf_outside_mig), in subprocesses, so the test database is untouched."""

import os
import subprocess
import sys

import psycopg
import pytest
from django.db import connection

from tests.support import ROOT

SCRATCH = "nf_outside_mig"

TRIGGERS = """
SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
WHERE t.tgname = 'nodefleet_outside_write' ORDER BY c.relname
"""


def server(dbname="postgres"):
    db = connection.settings_dict
    return psycopg.connect(
        host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"], dbname=dbname, autocommit=True
    )


def migrate(*args):
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{SCRATCH}"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings_test", "DATABASE_URL": url}
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr


def schema():
    with server(SCRATCH) as conn:
        triggers = [row[0] for row in conn.execute(TRIGGERS)]
        function = conn.execute("SELECT to_regprocedure('nodefleet_record_outside_write()') IS NOT NULL").fetchone()
        table = conn.execute("SELECT to_regclass('hosts_outsidewrite') IS NOT NULL").fetchone()
    return triggers, function[0], table[0]


@pytest.fixture
def scratch():
    with server() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {SCRATCH}")
        conn.execute(f"CREATE DATABASE {SCRATCH}")
    yield
    with server() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {SCRATCH} WITH (FORCE)")


@pytest.mark.django_db
def test_triggers_survive_migrate_to_zero_and_back(scratch):
    migrate()
    assert schema() == (["hosts_host", "nodes_node"], True, True)

    migrate("hosts", "zero")
    assert schema() == ([], False, False)

    migrate()
    assert schema() == (["hosts_host", "nodes_node"], True, True)
