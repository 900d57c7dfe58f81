"""`make run` as a newcomer sees it, on its own SQLite file and a free port: the server, the
simulated agents and a task worker started together by tools/devserver.py; an upgrade ends
`running` within seconds, a rollout completes; Ctrl-C stops everything; no process ever sees
"database is locked"."""

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

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


# A newcomer's first hour: a checkout of its own, `make run`, then the README's commands copied as
# written (no DEBUG=1, no SECRET_KEY prefix), then `make run` again.

#: What a newcomer's shell does not have: make run must bring all of it itself.
NOT_IN_A_NEWCOMERS_SHELL = ("DEBUG", "SECRET_KEY", "DATABASE_URL", "DJANGO_SETTINGS_MODULE", "DEMO_LOGIN_PASSWORD")


def newcomer_checkout(tmp_path):
    """The working tree as a clone would have it (tracked and new files, nothing ignored), with
    this run's venv linked in: make's venv step is told not to run (`-o`), so it installs nothing."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    checkout = tmp_path / "nodefleet"
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            target = checkout / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    (checkout / ".venv").symlink_to(Path(sys.prefix))
    return checkout


def newcomer_env() -> dict:
    return {key: value for key, value in os.environ.items() if key not in NOT_IN_A_NEWCOMERS_SHELL}


def start_make_run(checkout, port):
    """`make run RUN_ADDR=127.0.0.1:PORT`; returns the process and its output once the admin's
    login page answers."""
    log = open(checkout / "make-run.log", "w+")  # noqa: SIM115 (read back and closed by stop_make_run)
    process = subprocess.Popen(
        ["make", "-o", ".venv/.installed", "run", f"RUN_ADDR=127.0.0.1:{port}", "AGENT_ARGS=--interval 0.5"],
        cwd=checkout,
        env=newcomer_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/login/", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    log.seek(0)
    output = log.read()
    assert process.poll() is None, output
    return process, log, output


def stop_make_run(process, log) -> str:
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    log.seek(0)
    output = log.read()
    log.close()
    return output


def readme_command(checkout, line: str) -> subprocess.CompletedProcess:
    """One of the README's command lines, run by a shell in the checkout as a newcomer would."""
    return subprocess.run(
        ["bash", "-c", line], cwd=checkout, env=newcomer_env(), capture_output=True, text=True, timeout=120
    )


def get(url: str, key: str) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def login_of(output: str) -> tuple[str, str]:
    url = re.search(r"Admin login: (\S+)", output)
    password = re.search(r"password: (\S+)", output)
    assert url and password, output
    return url.group(1), password.group(1)


@pytest.mark.slow
def test_after_make_run_the_readmes_commands_work_as_written_and_a_second_run_keeps_the_login(tmp_path):
    checkout = newcomer_checkout(tmp_path)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process, log, output = start_make_run(checkout, port)
    try:
        url, password = login_of(output)
        assert url == f"{base}/admin/"  # RUN_ADDR's, not 8000's
        minted = readme_command(checkout, ".venv/bin/python manage.py api_token admin")
        assert minted.returncode == 0, minted.stdout + minted.stderr
        key = minted.stdout.strip().splitlines()[-1]
        assert get(f"{base}/api/v1/hosts/", key) == 200
        agent = readme_command(
            checkout, "T=$(.venv/bin/python manage.py agent_token host-00001 --rotate | tail -1); echo $T"
        )
        assert agent.returncode == 0 and agent.stdout.strip(), agent.stdout + agent.stderr
        assert get(f"{base}/api/v1/agent/commands/", agent.stdout.strip()) == 200
        audit = readme_command(checkout, ".venv/bin/python manage.py audit_resources")
        assert audit.returncode == 0 and "Checked 20 host(s)" in audit.stdout, audit.stdout + audit.stderr
    finally:
        output = stop_make_run(process, log)
    assert "Traceback" not in output, output

    process, log, again = start_make_run(checkout, port)
    try:
        assert login_of(again) == (url, password)  # the same login, printed again
        assert get(f"{base}/api/v1/hosts/", key) == 200  # the integrator's token lives on
    finally:
        stop_make_run(process, log)

    # The quick start's file changes nothing for the tests or for production beside it.
    check = (
        f"{sys.executable} -c 'import django; django.setup(); from django.conf import settings; print(settings.DEBUG)'"
    )
    tests = readme_command(checkout, f"DJANGO_SETTINGS_MODULE=config.settings_test {check}")
    assert tests.stdout.strip() == "False", tests.stdout + tests.stderr
    production = readme_command(
        checkout, "DATABASE_URL=postgres://root@127.0.0.1:5432/postgres .venv/bin/python manage.py check"
    )
    assert production.returncode == 1, production.stdout + production.stderr
    assert production.stderr.count("\n") == 1 and "SECRET_KEY is not set" in production.stderr
    assert "Traceback" not in production.stderr
