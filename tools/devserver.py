"""Runs the quick start's processes together (`make run`): the web server, the simulated agents
and whatever else the demo needs, each line of their output prefixed with its name. Ctrl-C (or
SIGTERM) stops all of them; so does any one of them exiting.

    python -m tools.devserver "CMD ARG ..." "CMD ARG ..." ...

Each argument is one command line (split like a shell would, without running a shell). Every
command runs in its own process group, so a command's own children (runserver's autoreloader)
stop with it."""

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

#: How long the processes get to stop after SIGTERM before they are killed.
GRACE_SECONDS = 10


def label(argv: list[str]) -> str:
    """`runserver` for `python manage.py runserver ...`, else the program's name."""
    for index, arg in enumerate(argv[:-1]):
        if Path(arg).name == "manage.py":
            return argv[index + 1]
    return Path(argv[0]).name


def _relay(name: str, stream, width: int) -> None:
    for line in iter(stream.readline, b""):
        sys.stdout.buffer.write(f"{name:<{width}} | ".encode() + line)
        sys.stdout.buffer.flush()


def _signal_groups(processes: list[subprocess.Popen], signum: int) -> None:
    for process in processes:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signum)


def run(commands: list[list[str]]) -> int:
    """Starts every command, waits until one exits or a stop signal arrives, stops the rest.
    Returns 0 when stopped by a signal, else the exit status of the command that ended first."""
    stop = threading.Event()

    def request_stop(signum, frame):
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    names = [label(argv) for argv in commands]
    width = max(map(len, names))
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    processes, relays = [], []
    for name, argv in zip(names, commands, strict=True):
        process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=environment, start_new_session=True
        )
        relay = threading.Thread(target=_relay, args=(name, process.stdout, width), daemon=True)
        relay.start()
        processes.append(process)
        relays.append(relay)

    ended = None
    while not stop.is_set() and ended is None:
        ended = next((process for process in processes if process.poll() is not None), None)
        stop.wait(0.2)
    if ended is not None:
        name = names[processes.index(ended)]
        print(f"{name} exited with status {ended.returncode}: stopping the others", file=sys.stderr, flush=True)

    _signal_groups(processes, signal.SIGTERM)
    deadline = time.monotonic() + GRACE_SECONDS
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
    _signal_groups(processes, signal.SIGKILL)
    for process in processes:
        process.wait()
    for relay in relays:
        relay.join(timeout=1)
    if ended is None:
        return 0
    return ended.returncode if ended.returncode >= 0 else 1  # killed by a signal: 1


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    return run([shlex.split(command) for command in argv])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
