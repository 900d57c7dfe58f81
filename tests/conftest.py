"""Test setup: the suite runs on PostgreSQL only (SQLite ignores row locks)."""

import pytest
from django.conf import settings
from django.db import connection


def pytest_configure(config):
    engine = settings.DATABASES["default"]["ENGINE"]
    if engine != "django.db.backends.postgresql":
        pytest.exit(
            f"The suite needs PostgreSQL (DATABASE_URL), not {engine}: SQLite ignores row locks. "
            "Run `make test`, which defaults to postgres://root@127.0.0.1:5432/nodefleet.",
            returncode=3,
        )


def pytest_sessionstart(session):
    import psycopg

    db = settings.DATABASES["default"]
    try:
        psycopg.connect(
            host=db.get("HOST") or None,
            port=db.get("PORT") or None,
            user=db.get("USER") or None,
            password=db.get("PASSWORD") or None,
            dbname="postgres",
            connect_timeout=5,
        ).close()
    except psycopg.OperationalError as error:
        pytest.exit(
            f"No PostgreSQL answers at {db.get('HOST')}:{db.get('PORT')} ({error}). Start it "
            "(e.g. `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`) "
            "or point DATABASE_URL at one.",
            returncode=3,
        )


@pytest.fixture
def queries():
    """The SQL statements run inside the `with` block (connection.execute_wrapper)."""
    from contextlib import contextmanager

    @contextmanager
    def capture():
        statements = []

        def wrapper(execute, sql, params, many, context):
            statements.append(sql)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(wrapper):
            yield statements

    return capture
