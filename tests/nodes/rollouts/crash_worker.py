"""A real `manage.py db_worker` process that SIGKILLs itself at an injected point of a rollout's
advance (the crash-safety tests run it): python crash_worker.py POINT N, the Nth time.

Points:
- `inside_upgrade`: node_upgrade's write (counters, node, NodeLog, Command) is done, not committed;
- `before_row_moves`: node_upgrade returned; the row's move to `upgrading` not yet written;
- `after_upgrade_commit`: the node's upgrade and its row's move have committed;
- `between_batches`: a batch ended and the next one is recorded (committed), none of it started.
"""

import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import transaction  # noqa: E402

import nodes.changes.upgrade  # noqa: E402
from nodes.rollouts import services  # noqa: E402

POINT, NTH = sys.argv[1], int(sys.argv[2])
seen = {"n": 0}


def die():
    os.kill(os.getpid(), signal.SIGKILL)


def reached() -> bool:
    seen["n"] += 1
    return seen["n"] == NTH


def wrap(module, name, after):
    original = getattr(module, name)

    def wrapper(*args, **kwargs):
        result = original(*args, **kwargs)
        after(result, args, kwargs)
        return result

    setattr(module, name, wrapper)


if POINT == "inside_upgrade":
    wrap(nodes.changes.upgrade, "_write_upgrade", lambda result, a, k: reached() and die())
elif POINT == "before_row_moves":
    wrap(services, "node_upgrade", lambda result, a, k: reached() and die())
elif POINT == "after_upgrade_commit":
    wrap(
        services, "_upgrade_row", lambda result, a, k: result == "upgraded" and reached() and transaction.on_commit(die)
    )
elif POINT == "between_batches":
    wrap(
        services, "_end_batch", lambda result, a, k: result == "next_batch" and reached() and transaction.on_commit(die)
    )
else:
    raise SystemExit(f"unknown point {POINT}")

call_command("db_worker", "--no-startup-delay", "--interval", "0.05", "--no-reload", verbosity=0)
