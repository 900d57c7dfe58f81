"""`make run` as a newcomer sees it, on its own SQLite file and a free port: the server, the
simulated agents and a task worker started together by tools/devserver.py; an upgrade ends
`running` within seconds, a rollout completes; Ctrl-C stops everything; no process ever sees
"database is locked"."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from tests.api.gunicorn import free_port
from tests.support import ROOT

DEADLINE_SECONDS = 60


@pytest.mark.slow
def test_make_run_serves_with_agents_that_finish_an_upgrade_and_ctrl_c_stops_all(tmp_path):
    database = tmp_path / "quickstart.sqlite3"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "1",
        "DATABASE_URL": f"sqlite:///{database}",
    }

    def manage(*args) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    manage("migrate", "--no-input", "-v", "0")
    manage("seed_demo", "--hosts", "2", "--nodes-per-host", "2")
    port = free_port()
    python = sys.executable
    demo = subprocess.Popen(
        [
            python,
            "-m",
            "tools.devserver",
            f"{python} manage.py runserver 127.0.0.1:{port} --noreload",
            f"{python} manage.py simulate_agents --url http://127.0.0.1:{port} --interval 0.3",
            f"{python} manage.py db_worker --interval 0.3 --no-reload",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        with sqlite3.connect(database) as db:
            node, image = db.execute(
                "SELECT n.name, i.protocol || '@' || i.version FROM nodes_node n "
                "JOIN nodes_image i ON i.protocol = (SELECT protocol FROM nodes_image WHERE id = n.image_id) "
                "AND i.id != n.image_id ORDER BY n.name LIMIT 1"
            ).fetchone()
        manage("upgrade_node", node, image, "--force")
        deadline, state = time.monotonic() + DEADLINE_SECONDS, None
        while time.monotonic() < deadline and demo.poll() is None:
            with sqlite3.connect(database) as db:
                state = db.execute("SELECT state FROM nodes_node WHERE name = ?", [node]).fetchone()[0]
            if state != "upgrading":
                break
            time.sleep(0.3)
        created = manage("rollout", "create", image, "--canary", "0", "--no-pause-after-canary", "--start", "--json")
        rollout_id = json.loads(created)["id"]
        rollout_state = None
        while time.monotonic() < deadline and demo.poll() is None:
            with sqlite3.connect(database) as db:
                rollout_state = db.execute(
                    "SELECT state FROM nodes_rollout WHERE id = ?", [rollout_id.replace("-", "")]
                ).fetchone()[0]
            if rollout_state != "running":
                break
            time.sleep(0.3)
    finally:
        demo.send_signal(signal.SIGINT)
        output, _ = demo.communicate(timeout=30)

    assert state == "running", output
    assert rollout_state == "completed", output
    assert demo.returncode == 0, output
    assert "simulate_agents | " in output and "node_upgrade of node" in output
    assert "database is locked" not in output
    assert '"GET /api/v1/agent/commands/ HTTP/1.1" 200' not in output  # idle polls stay out of the log
    with sqlite3.connect(database) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
