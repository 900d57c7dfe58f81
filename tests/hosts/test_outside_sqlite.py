"""On SQLite (the quick start) nothing is recorded, and the audit says so once, not per finding."""

import os
import sqlite3
import subprocess
import sys

from tests.support import ROOT


def test_the_audit_on_sqlite_says_once_that_nothing_is_recorded(tmp_path):
    database = tmp_path / "quick.sqlite3"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings_test", "DATABASE_URL": f"sqlite:///{database}"}

    def manage(*args):
        return subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
        )

    assert manage("migrate", "--no-input", "-v", "0").returncode == 0
    assert manage("seed_demo", "--hosts", "2", "--nodes-per-host", "2").returncode == 0
    with sqlite3.connect(database) as conn:  # drift by hand, as psql would on PostgreSQL
        conn.execute("UPDATE hosts_host SET node_count = node_count + 1, node_cpu_cores = 0")
        assert conn.execute("SELECT count(*) FROM hosts_outsidewrite").fetchone() == (0,)

    audit = manage("audit_resources")
    as_json = manage("audit_resources", "--json")

    assert (audit.returncode, as_json.returncode) == (1, 1)
    assert audit.stdout.count("host host-") == 4  # two findings on each of the two hosts
    assert "cause unknown" not in audit.stdout and "changed outside" not in audit.stdout
    notice = "note: outside writes are recorded on PostgreSQL only"
    assert audit.stderr.count(notice) == 1 and as_json.stderr.count(notice) == 1
    assert '"outside_writes": null' in as_json.stdout
