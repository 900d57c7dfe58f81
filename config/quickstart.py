"""The quick start's settings file (`make run`): `.env.quickstart` beside manage.py, written once
with a generated SECRET_KEY, DEBUG on and the demo login's password, never overwritten.

config.settings reads it only when no DATABASE_URL is set (the quick start's SQLite database):
production, CI and the test settings always name their database, so the file never changes
what they read, while every `manage.py` command typed in the same checkout after `make run`
finds the same settings as `make run` itself, with no prefix. Delete the file for a new key
and a new demo password.

    python -m config.quickstart     # writes the file if it is missing, says which
"""

import os
import secrets
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PATH = ROOT / ".env.quickstart"

#: What a command started without a SECRET_KEY says, in one line (manage.py prints it alone).
MISSING_SECRET_KEY = (
    "SECRET_KEY is not set: set the SECRET_KEY environment variable or put it in .env (see .env.example); "
    "for the quick start, run `make run` first (it writes .env.quickstart)."
)

HEADER = (
    "# Written by `make run` for the quick start (SQLite, DEBUG) and never overwritten: delete it for a\n"
    "# new key and demo password. Read by config/settings.py only while DATABASE_URL is unset; production,\n"
    "# CI and the tests name their database, so they never read it. Not for production: see .env.example.\n"
)


def applies() -> bool:
    """Whether config.settings reads the file: no DATABASE_URL (from the environment or .env)."""
    return "DATABASE_URL" not in os.environ


def write(path: Path = PATH) -> bool:
    """Writes the file unless it exists (True when it wrote it). Readable by its owner only."""
    if path.exists():
        return False
    body = (
        HEADER
        + "DEBUG=true\n"
        + f"SECRET_KEY={secrets.token_urlsafe(50)}\n"
        + f"DEMO_LOGIN_PASSWORD={secrets.token_urlsafe(12)}\n"
    )
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(body)
    return True


def main() -> int:
    import environ

    environ.Env.read_env(ROOT / ".env", overwrite=False)  # as config.settings does
    if not applies():
        print(
            "make run: DATABASE_URL is set, so the quick start's .env.quickstart is not read: "
            "unset DATABASE_URL for the quick start's SQLite database.",
            file=sys.stderr,
        )
        return 1
    if write():
        print(f"Wrote {PATH.name} (SECRET_KEY, DEBUG and the demo login's password, for the quick start).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
