"""CPU time per request of the hot paths, in-process: `GET /healthz`, the idle agent poll and a
token-authenticated `POST /api/v1/nodes/{id}/upgrade/`, each handed to the WSGI application
gunicorn serves (config.wsgi; no socket), best of 3 runs (issue 22). Then the service alone
(`node_upgrade`), with the CPU its PostgreSQL backend spent (read from /proc: the server runs on
this machine): on a saturated machine, core time per upgrade is what bounds throughput, and it
is steadier to measure than a rate. Compare settings by running it with them in the environment
(e.g. DB_PREPARED_STATEMENTS=false).

    .venv/bin/python bench/request_cpu.py [--database nf_perf_bench_10k] [--requests 600] [--root .]

--root runs another checkout's code (e.g. /work/main) on the same database, for a before/after.
"""

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="nf_perf_bench_10k", help="a seeded fleet (seed_demo)")
    parser.add_argument("--requests", type=int, default=600, help="per run (the upgrade: half)")
    parser.add_argument("--root", default=str(Path(__file__).resolve().parents[1]))
    args = parser.parse_args()
    sys.path.insert(0, args.root)
    for name, value in {
        "SECRET_KEY": "benchmark-only",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "API_WRITE_THROTTLE_RATE": "",
        "LOG_LEVEL": "ERROR",
    }.items():
        os.environ.setdefault(name, value)
    from bench.common import database_url, post_environ, setup_django

    setup_django(database_url(args.database))
    from django.contrib.auth import get_user_model
    from django.db import connection

    from config.wsgi import application
    from hosts.agent_tokens import agent_token_issue
    from hosts.models import Host
    from nodes.models import Image, Node
    from tokens.services import token_create

    host = Host.objects.create(name=f"bench-idle-{os.getpid()}", cpu_cores=1, memory_bytes=1, disk_bytes=1)
    agent_token = agent_token_issue(host=host)
    user, _ = get_user_model().objects.get_or_create(username="bench-cpu", defaults={"is_superuser": True})
    user_token = token_create(user=user)[1]

    def call(method: str, path: str, authorization: str | None = None, body: bytes = b"") -> str:
        environ = post_environ(path, body, authorization or "")
        environ["REQUEST_METHOD"] = method
        if authorization is None:
            del environ["HTTP_AUTHORIZATION"]
        status = []
        b"".join(application(environ, lambda line, headers: status.append(line)))
        return status[0]

    images: dict[str, list[str]] = {}
    for image in Image.objects.all():
        images.setdefault(image.protocol, []).append(str(image.pk))
    rows = Node.objects.filter(state="running").values_list("pk", "image_id", "image__protocol")[:3000]
    current = {str(pk): str(image_id) for pk, image_id, _ in rows}
    protocol = {str(pk): name for pk, _, name in rows}

    def upgrade():
        pk = random.choice(list(current))
        target = random.choice([i for i in images[protocol[pk]] if i != current[pk]] or [current[pk]])
        body = json.dumps({"image_id": target}).encode()
        if call("POST", f"/api/v1/nodes/{pk}/upgrade/", f"Token {user_token}", body).startswith("200"):
            current[pk] = target

    def service_upgrade():
        from nodes.changes import node_upgrade

        pk = random.choice(list(current))
        target = random.choice([i for i in images[protocol[pk]] if i != current[pk]] or [current[pk]])
        try:
            node_upgrade(node_id=pk, image_id=target)
            current[pk] = target
        except Exception:  # a refusal (no room, an open command) costs its statements too
            pass

    def backend_cpu() -> float:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def best_service_us(count: int) -> tuple[float, float]:
        runs = []
        for _ in range(3):
            began, began_backend = time.process_time(), backend_cpu()
            for _ in range(count):
                service_upgrade()
            runs.append(((time.process_time() - began) / count * 1e6, (backend_cpu() - began_backend) / count * 1e6))
        return min(runs, key=sum)

    def best_cpu_us(request, count: int) -> float:
        runs = []
        for _ in range(3):
            began = time.process_time()
            for _ in range(count):
                request()
            runs.append((time.process_time() - began) / count * 1e6)
        return min(runs)

    try:
        healthz = best_cpu_us(lambda: call("GET", "/healthz"), args.requests)
        poll = best_cpu_us(lambda: call("GET", "/api/v1/agent/commands/", f"Bearer {agent_token}"), args.requests)
        upgrades = best_cpu_us(upgrade, args.requests // 2)
        service, backend = best_service_us(args.requests)
    finally:
        host.delete()
    print(
        f"{args.root}: CPU per request: GET /healthz {healthz:.0f} us, idle poll {poll:.0f} us, "
        f"upgrade {upgrades:.0f} us"
    )
    print(f"  poll / healthz in CPU: {healthz / poll:.2f}x")
    print(
        f"  node_upgrade: {service:.0f} us in this process + {backend:.0f} us in its PostgreSQL backend "
        f"= {service + backend:.0f} us of core time per upgrade"
    )


if __name__ == "__main__":
    main()
