"""The outside-write triggers are part of the schema: `migrate` installs them, the reverse
migration drops them (and the function) cleanly, and migrating back installs them again. On a
scratch database of its own (nf_outside_mig_<pid>), in subprocesses, so the test database is untouched."""

import os
import subprocess
import sys

import psycopg
import pytest
from django.db import connection

from tests.support import ROOT

SCRATCH = f"nf_outside_mig_{os.getpid()}"  # one per test run: two runs never share it

TRIGGERS = """
SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
WHERE t.tgname = 'nodefleet_outside_write' ORDER BY c.relname
"""


def server(dbname="postgres"):
    db = connection.settings_dict
    return psycopg.connect(
        host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"], dbname=dbname, autocommit=True
    )


def migrate(*args, command="migrate", **environ):
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{SCRATCH}"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings_test", "DATABASE_URL": url, **environ}
    extra = ["--no-input", "-v", "0"] if command == "migrate" else []
    result = subprocess.run(
        [sys.executable, "manage.py", command, *extra, *args],
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


def host_trigger():
    with server(SCRATCH) as conn:
        return conn.execute(
            "SELECT tgenabled, pg_get_triggerdef(oid) FROM pg_trigger "
            "WHERE tgname = 'nodefleet_outside_write' AND tgrelid = 'hosts_host'::regclass"
        ).fetchone()


@pytest.mark.django_db
def test_migrate_puts_back_a_disabled_trigger_and_follows_the_app_role(scratch):
    migrate()
    migrate("--hosts", "1", "--nodes-per-host", "1", command="seed_demo")
    role = "nf_outside_app"
    with server(SCRATCH) as conn:
        conn.execute("ALTER TABLE hosts_host DISABLE TRIGGER nodefleet_outside_write")
        conn.execute(f"DROP ROLE IF EXISTS {role}")
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f"GRANT SELECT, UPDATE ON hosts_host TO {role}")
    try:
        assert host_trigger()[0] == "D"

        migrate(OUTSIDE_WRITES_APP_ROLE=role)

        enabled, definition = host_trigger()
        assert enabled == "O" and f"(SESSION_USER <> '{role}'::name)" in definition.replace(
            "session_user", "SESSION_USER"
        )
        db = connection.settings_dict
        as_app = psycopg.connect(
            host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=role, dbname=SCRATCH, autocommit=True
        )
        with as_app, server(SCRATCH) as as_root:  # neither carries the mark
            as_app.execute("UPDATE hosts_host SET node_count = node_count + 1")
            assert as_root.execute("SELECT count(*) FROM hosts_outsidewrite").fetchone() == (0,)
            as_root.execute("UPDATE hosts_host SET node_count = node_count - 1")
            assert as_root.execute("SELECT session_user FROM hosts_outsidewrite").fetchall() == [(db["USER"],)]
    finally:
        with server(SCRATCH) as conn:
            conn.execute(f"REVOKE ALL ON hosts_host FROM {role}")
        with server() as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {SCRATCH} WITH (FORCE)")
            conn.execute(f"DROP ROLE IF EXISTS {role}")


@pytest.mark.django_db
def test_a_column_of_the_contract_added_later_is_tracked_after_migrate(scratch):
    """Whatever migration adds one of hosts.outside.HOST_COLUMNS, the next `migrate` takes it into
    the host trigger: two of §11's columns are dropped (the trigger with them) and added back, as a
    later migration would add them."""
    migrate()
    assert "region" in host_trigger()[1]
    with server(SCRATCH) as conn:
        conn.execute("ALTER TABLE hosts_host DROP COLUMN region CASCADE, DROP COLUMN max_nodes CASCADE")
    migrate()
    assert "region" not in host_trigger()[1]
    with server(SCRATCH) as conn:
        conn.execute("ALTER TABLE hosts_host ADD COLUMN region varchar(100) NOT NULL DEFAULT ''")
        conn.execute("ALTER TABLE hosts_host ADD COLUMN max_nodes bigint NULL")
    assert "region" not in host_trigger()[1]

    migrate()

    definition = host_trigger()[1]
    tracked = definition.split("UPDATE OF ", 1)[1].split(" ON public.hosts_host", 1)[0].split(", ")
    assert tracked[:4] == ["cpu_cores", "memory_bytes", "disk_bytes", "node_count"]
    assert {"max_nodes", "region"} <= set(tracked)
    with server(SCRATCH) as conn:
        meta = conn.execute(
            "SELECT obj_description(to_regprocedure('nodefleet_record_outside_write()'), 'pg_proc')::jsonb"
        ).fetchone()[0]
    assert {"max_nodes", "region"} <= set(meta["host_columns"])
