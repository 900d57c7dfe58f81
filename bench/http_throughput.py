"""Upgrades through HTTP: gunicorn (W workers) and POST /api/v1/nodes/{id}/upgrade/, against the
service-level rate measured in the same run. Prints throughput, p50/p99 latency and the ratio.

    .venv/bin/python bench/http_throughput.py [--database nodefleet_bench] [--seconds 15]
"""

import argparse
import http.client
import json
import multiprocessing
import os
import random
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT, ensure_fleet, percentile
from bench.upgrade_throughput import load_plan, run_phase


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def client_process(port, token, work, images, threads, seconds, start_at, queue):
    """`threads` keep-alive HTTP clients, each upgrading its own share of nodes."""
    results = []

    def client(share):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        rng = random.Random()
        latencies, statuses = [], {}
        time.sleep(max(0.0, start_at - time.time()))
        deadline = time.time() + seconds
        while time.time() < deadline:
            index = rng.randrange(len(share))
            node_id, current, protocol = share[index]
            target = rng.choice([image for image in images[protocol] if image != current])
            body = json.dumps({"image_id": str(target)})
            began = time.perf_counter()
            conn.request(
                "POST",
                f"/api/v1/nodes/{node_id}/upgrade/",
                body=body,
                headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
            )
            answer = conn.getresponse()
            answer.read()
            latencies.append(time.perf_counter() - began)
            statuses[answer.status] = statuses.get(answer.status, 0) + 1
            if answer.status == 200:
                share[index] = (node_id, target, protocol)
        results.append((latencies, statuses))

    shares = [work[i::threads] for i in range(threads)]
    pool = [threading.Thread(target=client, args=(share,)) for share in shares]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    queue.put(results)


def start_gunicorn(url, port, workers):
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "SECRET_KEY": "benchmark-only",
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "LOG_LEVEL": "WARNING",
        "BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": str(workers),
        "GUNICORN_ACCESS_LOG": "",
        "API_WRITE_THROTTLE_RATE": "",
    }
    server = subprocess.Popen(
        [str(ROOT / ".venv/bin/gunicorn"), "-c", "config/gunicorn.py", "config.wsgi"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    for _ in range(100):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit(f"gunicorn did not answer: {server.stderr.read()[-2000:]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default="nodefleet_bench")
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--nodes-per-host", type=int, default=100)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers, and service-level processes")
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument("--threads", type=int, default=4, help="keep-alive connections per client process")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--sample", type=int, default=20_000)
    args = parser.parse_args()

    url = ensure_fleet(args.database, args.hosts, args.nodes_per_host)
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    from tokens.services import token_create

    user, _ = get_user_model().objects.get_or_create(username="bench-http")
    user.user_permissions.add(Permission.objects.get(codename="upgrade_node"))
    token = token_create(user=user, name="bench-http")[1]

    plan = load_plan(args.workers, args.sample)
    service = run_phase("service", url, args.workers, args.seconds, plan)
    work = load_plan(args.clients, args.sample)  # the nodes' images as they are now

    port = free_port()
    server = start_gunicorn(url, port, args.workers)
    try:
        context = multiprocessing.get_context("spawn")
        queue = context.Queue()
        start_at = time.time() + 2
        clients = [
            context.Process(
                target=client_process,
                args=(port, token, work["work"][i], work["images"], args.threads, args.seconds, start_at, queue),
            )
            for i in range(args.clients)
        ]
        for process in clients:
            process.start()
        results = [result for _ in clients for result in queue.get()]
        for process in clients:
            process.join()
    finally:
        server.terminate()
        server.wait(10)

    latencies = [value for lat, _ in results for value in lat]
    statuses = {}
    for _, counts in results:
        for status, count in counts.items():
            statuses[status] = statuses.get(status, 0) + count
    http_rate = statuses.get(200, 0) / args.seconds
    print(
        f"fleet: {args.hosts} hosts x {args.nodes_per_host} nodes; gunicorn {args.workers} workers; "
        f"{args.clients * args.threads} keep-alive clients; {args.seconds:g} s per phase"
    )
    print(f"  service level  {service['rate']:>8.1f} upgrades/s  ({args.workers} processes)")
    print(
        f"  HTTP           {http_rate:>8.1f} upgrades/s  p50 {percentile(latencies, 0.5) * 1000:.2f} ms  "
        f"p99 {percentile(latencies, 0.99) * 1000:.2f} ms  statuses {dict(sorted(statuses.items()))}"
    )
    print(f"  ratio HTTP / service level: {http_rate / service['rate']:.2f}x (target >= 0.5x)")


if __name__ == "__main__":
    main()
