"""Serving the app under gunicorn for a test: production settings against the test database,
bound to a free port on 127.0.0.1, stopped (with its workers) when the test ends."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def live_database_url() -> str:
    """DATABASE_URL of the database this test runs on (pytest-django's test_<name>)."""
    db = connection.settings_dict
    credentials = quote(db["USER"] or "") + (f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else "")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{quote(db['NAME'])}"


def _wait_healthy(base_url: str, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode} before answering")
        try:
            with urllib.request.urlopen(f"{base_url}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not answer /healthz within {timeout}s")


@contextmanager
def gunicorn(
    *,
    workers: int,
    log: Path,
    settings_module: str = "config.settings",
    extra_env: dict[str, str] | None = None,
) -> Iterator[str]:
    """Runs `gunicorn config.wsgi` with `workers` workers (and these environment variables on
    top of the defaults below); yields its base URL. Pages that render the admin's HTML need
    `settings_module="config.settings_test"`: production's static storage wants a collectstatic
    manifest, and the test users' passwords the fast hasher."""
    port = free_port()
    metrics_dir = log.parent / "metrics"  # config/gunicorn.py's workers share their metrics there
    metrics_dir.mkdir(exist_ok=True)
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": settings_module,
        "DATABASE_URL": live_database_url(),
        "SECRET_KEY": "gunicorn-test-only-not-a-secret",
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "LOG_LEVEL": "WARNING",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "API_WRITE_THROTTLE_RATE": "",  # tests of concurrency send many writes as one user
        **(extra_env or {}),
    }
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--config=config/gunicorn.py",  # production's, with the bind and workers below
        "config.wsgi:application",
        f"--workers={workers}",
        f"--bind=127.0.0.1:{port}",
        "--timeout=60",
        "--graceful-timeout=5",
    ]
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=settings.BASE_DIR, env=environment, stdout=output, stderr=subprocess.STDOUT
        )
        try:
            base_url = f"http://127.0.0.1:{port}"
            _wait_healthy(base_url, process, timeout=60)
            yield base_url
        finally:
            process.send_signal(signal.SIGTERM)  # the master stops its workers (and their connections)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def post_json(url: str, token: str, body: dict) -> tuple[int, dict]:
    """POST `body` with a user token; the status and the JSON answer, errors included."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)
