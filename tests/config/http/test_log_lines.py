"""Log lines as an operator reads them: JSON times in UTC whatever the server's timezone, and one
line per 4xx beside the access line under make run's server (DEBUG), not two."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

from tests.api.gunicorn import free_port
from tests.support import ROOT

FORMAT_A_RECORD = """
import json, logging
from config.http.logging import JsonFormatter
record = logging.makeLogRecord({"name": "nodefleet", "levelno": 20, "levelname": "INFO", "msg": "hello"})
record.created, record.msecs = 1764615020.25, 250.0  # 2025-12-01T18:50:20.250 UTC
print(JsonFormatter().format(record))
"""


def test_json_log_times_are_utc_on_a_server_in_another_timezone():
    env = {**os.environ, "TZ": "XYZ-3"}  # three hours east of UTC (a POSIX TZ: no tzdata needed)
    result = subprocess.run(
        [sys.executable, "-c", FORMAT_A_RECORD], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout)["time"] == "2025-12-01T18:50:20.250Z"


def test_make_runs_server_logs_a_4xx_once_beside_its_access_line(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "1",
        "SECRET_KEY": "tests-only-not-a-secret",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload", "--skip-checks"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/nope/", timeout=2)
            except urllib.error.HTTPError as error:
                assert error.code == 404
                break
            except OSError:
                time.sleep(0.3)
        time.sleep(0.5)
    finally:
        server.send_signal(signal.SIGINT)
        output, _ = server.communicate(timeout=30)
    lines = [line for line in output.splitlines() if "/api/v1/nope/" in line]
    assert len(lines) == 2, output  # the access line and one WARNING django.request line
    assert sum("WARNING django.request" in line and "Not Found: /api/v1/nope/" in line for line in lines) == 1
    assert sum('"GET /api/v1/nope/ HTTP/1.1" 404' in line for line in lines) == 1
