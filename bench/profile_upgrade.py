"""Profiles N upgrades in one process (pyinstrument) and prints the top of the profile.

    .venv/bin/python bench/profile_upgrade.py [--database nodefleet_bench] [--count 2000] [--http]

By default it profiles the service (node_upgrade). With --http it profiles the whole HTTP path
in-process: each upgrade is a `POST /api/v1/nodes/{id}/upgrade/` with a token, handed to the
WSGI application gunicorn serves (config.wsgi) — middleware, authentication, permissions, DRF,
the service and the rendering; only the socket is left out. It also prints the statements one
request runs.
"""

import argparse
import json
import os
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ensure_fleet, post_environ


def production_environment() -> None:
    """The settings gunicorn runs with in the HTTP benchmark (plain HTTP on loopback, no throttle)."""
    for name, value in {
        "SECRET_KEY": "benchmark-only",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "API_WRITE_THROTTLE_RATE": "",
        "LOG_LEVEL": "WARNING",
    }.items():
        os.environ.setdefault(name, value)


def wsgi_post(application, path: str, payload: dict, token: str) -> tuple[str, bytes]:
    """One request through the WSGI application, as gunicorn would hand it over."""
    body = json.dumps(payload).encode()
    environ = post_environ(path, body, f"Token {token}")
    status = []
    result = application(environ, lambda line, headers, exc_info=None: status.append(line))
    try:
        content = b"".join(result)
    finally:
        result.close()  # request_finished: what gunicorn does after each response
    return status[0], content


def bench_token(username: str = "bench-http") -> str:
    """A user allowed to upgrade, and a new API token of theirs (its key)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    from tokens.services import token_create

    user, _ = get_user_model().objects.get_or_create(username=username)
    user.user_permissions.add(Permission.objects.get(codename="upgrade_node"))
    return token_create(user=user, name=username)[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default="nodefleet_bench")
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--nodes-per-host", type=int, default=100)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--http", action="store_true", help="profile POST /api/v1/nodes/{id}/upgrade/ in-process")
    parser.add_argument("--depth", type=int, default=14, help="lines of the call tree to show")
    args = parser.parse_args()
    if args.http:
        production_environment()
    ensure_fleet(args.database, args.hosts, args.nodes_per_host)

    from django.db import connection
    from pyinstrument import Profiler

    from nodes.changes import node_upgrade
    from nodes.models import Image, Node

    images = {}
    for image in Image.objects.all():
        images.setdefault(image.protocol, []).append(image.pk)
    work = list(Node.objects.filter(image__protocol="ethereum").values_list("pk", "image_id")[: args.count + 1])
    rng = random.Random(1)
    targets = [(node_id, rng.choice([i for i in images["ethereum"] if i != current])) for node_id, current in work]

    if args.http:
        from config.wsgi import application

        token = bench_token()
        statements = []

        def capture(execute, sql, params, many, context):
            statements.append(" ".join(sql.split())[:110])
            return execute(sql, params, many, context)

        def upgrade(node_id, image_id):
            status, content = wsgi_post(
                application, f"/api/v1/nodes/{node_id}/upgrade/", {"image_id": str(image_id)}, token
            )
            if not status.startswith("200"):
                raise SystemExit(f"{status}: {content[:500]!r}")

        node_id, image_id = targets.pop()
        connection.force_debug_cursor = False
        upgrade(node_id, image_id)  # warm up: connection, caches
        node_id, image_id = targets.pop()
        with connection.execute_wrapper(capture):
            upgrade(node_id, image_id)
    else:
        targets.pop()

        def upgrade(node_id, image_id):
            node_upgrade(node_id=node_id, image_id=image_id)

    profiler = Profiler(interval=0.0005)
    with profiler:
        for node_id, image_id in targets:
            upgrade(node_id, image_id)
    print(profiler.output_text(unicode=False, color=False, show_all=False, short_mode=False))
    if args.http:
        print(f"statements of one request ({len(statements)}, BEGIN/COMMIT are not statements Django sees):")
        for sql in statements:
            print(f"  {sql}")


if __name__ == "__main__":
    main()
