"""Shared set-up for the benchmarks: a dedicated database, migrated and seeded with seed_demo."""

import io
import os
import sys
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SERVER = "postgres://root@127.0.0.1:5432"


def database_url(name: str) -> str:
    return f"{os.environ.get('BENCH_SERVER_URL', DEFAULT_SERVER)}/{name}"


def setup_django(url: str) -> None:
    """Points Django at `url` (production settings, DEBUG off) and sets it up in this process."""
    sys.path.insert(0, str(ROOT))
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("SECRET_KEY", "benchmark-only")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


def ensure_database(name: str) -> None:
    with psycopg.connect(database_url("postgres"), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def ensure_fleet(name: str, hosts: int, nodes_per_host: int) -> str:
    """Creates, migrates and seeds (idempotently) the database `name`; returns its URL."""
    from django.core.management import call_command

    ensure_database(name)
    url = database_url(name)
    setup_django(url)
    call_command("migrate", verbosity=0)
    call_command("seed_demo", hosts=hosts, nodes_per_host=nodes_per_host)
    return url


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def post_environ(path: str, body: bytes, authorization: str) -> dict:
    """The WSGI environ of one JSON POST with credentials, as gunicorn would hand it over."""
    return {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_AUTHORIZATION": authorization,
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.url_scheme": "http",
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


def measure_pages(client, pages, requests: int, *, warm: bool = False) -> dict:
    """Per (label, path) of `pages`: the SQL statements of one request (with `warm`, after a first
    one that fills the caches) and the median time in ms of `requests` more, through `client`."""
    import statistics
    import time

    from django.db import connection

    results = {}
    for label, path in pages:
        statements = []

        def count(execute, sql, params, many, context, statements=statements):
            statements.append(sql)
            return execute(sql, params, many, context)

        if warm:
            client.get(path)
        with connection.execute_wrapper(count):
            assert client.get(path).status_code == 200, path
        times = []
        for _ in range(requests):
            began = time.perf_counter()
            client.get(path)
            times.append(time.perf_counter() - began)
        results[label] = {"ms": statistics.median(times) * 1000, "statements": statements}
    return results
