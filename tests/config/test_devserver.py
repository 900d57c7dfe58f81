"""tools/devserver.py, which `make run` uses: one command starts every process, Ctrl-C stops
all of them (their own children included), and one process ending stops the rest."""

import logging
import signal
import subprocess
import sys
import time

from config.http.logging import QuietAgentPolls
from tests.support import ROOT

#: How the grandchild is told apart from any process that may take its pid once it is gone.
GRANDCHILD_SECONDS = "3599.25"
#: A child that prints the pid of a grandchild it started, then waits.
WITH_GRANDCHILD = (
    f'{sys.executable} -c "import subprocess, sys, time; '
    f"child = subprocess.Popen(['sleep', '{GRANDCHILD_SECONDS}']); print('pids', child.pid, flush=True); "
    'time.sleep(60)"'
)


def wait_for(condition, seconds: float = 10) -> bool:
    """Whether `condition()` holds within `seconds` (processes start and end asynchronously)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def start(*commands: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tools.devserver", *commands],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def grandchild_alive(pid: int) -> bool:
    """Whether our grandchild still runs (a zombie, exited but not reaped, counts as gone)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline, open(f"/proc/{pid}/stat") as stat:
            return GRANDCHILD_SECONDS.encode() in cmdline.read() and stat.read().split()[2] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def test_ctrl_c_stops_every_process_and_their_children():
    supervisor = start(WITH_GRANDCHILD, "sleep 60")
    first = supervisor.stdout.readline()
    assert first.startswith("python") and "| pids " in first  # each line prefixed with its process's name
    grandchild = int(first.split()[-1])
    assert wait_for(lambda: grandchild_alive(grandchild))  # its exec may still be under way

    supervisor.send_signal(signal.SIGINT)
    output, _ = supervisor.communicate(timeout=30)

    assert supervisor.returncode == 0
    assert wait_for(lambda: not grandchild_alive(grandchild))
    assert "exited" not in output


def test_one_process_ending_stops_the_others_with_its_status():
    supervisor = start("sh -c 'echo bye; exit 3'", WITH_GRANDCHILD)

    output, _ = supervisor.communicate(timeout=30)

    assert supervisor.returncode == 3
    assert "sh exited with status 3: stopping the others" in output
    assert "sh     | bye" in output


def test_without_commands_it_prints_its_usage_and_exits_2():
    supervisor = start()
    output, _ = supervisor.communicate(timeout=30)
    assert supervisor.returncode == 2 and "Ctrl-C" in output


def test_runserver_logs_no_line_for_a_successful_agent_poll_but_every_other_request():
    def access_line(requestline: str, status: int) -> logging.LogRecord:
        record = logging.makeLogRecord({"msg": '"%s" %s %s', "args": (requestline, str(status), "14")})
        record.status_code = status
        return record

    quiet = QuietAgentPolls()
    assert not quiet.filter(access_line("GET /api/v1/agent/commands/ HTTP/1.1", 200))
    assert quiet.filter(access_line("GET /api/v1/agent/commands/ HTTP/1.1", 401))
    assert quiet.filter(access_line("POST /api/v1/agent/commands/3/result/ HTTP/1.1", 200))
    assert quiet.filter(access_line("GET /admin/ HTTP/1.1", 200))
