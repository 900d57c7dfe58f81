"""The agents' hot path through gunicorn (W workers): an idle agent's poll
(GET /api/v1/agent/commands/, nothing to do) measured with wrk beside GET /healthz in the same
run (alternating rounds), and the result path (POST .../result/, each closing one open
node_create command) measured with keep-alive Python clients. Target: poll rate >= 0.5x the healthz rate.

    .venv/bin/python bench/agent_poll.py [--database nodefleet_bench] [--seconds 10] [--rounds 3] [--results 2000]

wrk is Debian's (`apt-get install -y wrk`); the script installs it when missing and it runs as
root. The fleet is seed_demo's (--hosts x --nodes-per-host), so the poll's lookups run on a
table of realistic size; the idle host and the results host are added beside it."""

import argparse
import multiprocessing
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ensure_fleet, percentile
from bench.http_throughput import free_port, start_gunicorn

IDLE_HOST = "bench-agent-idle"


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk is missing: apt-get install -y wrk", flush=True)
    subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=False, stdout=subprocess.DEVNULL)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is not installed and could not be installed (apt-get install -y wrk as root)")
    return found


def run_wrk(wrk: str, url: str, *, seconds: float, threads: int, connections: int, token: str | None = None) -> dict:
    command = [wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--latency"]
    if token:
        command += ["-H", f"Authorization: Bearer {token}"]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    p50 = re.search(r"50%\s+([\d.]+\w+)", output)
    p99 = re.search(r"99%\s+([\d.]+\w+)", output)
    return {
        "rate": rate,
        "non_2xx": int(errors.group(1)) if errors else 0,
        "p50": p50.group(1) if p50 else "?",
        "p99": p99.group(1) if p99 else "?",
    }


def prepare(results: int) -> tuple[str, str, list[str]]:
    """The idle host's token; a fresh host with `results` nodes being created (an open
    node_create command each) and its token; the command ids."""
    from hosts.agent_tokens import agent_token_issue
    from hosts.models import Host
    from nodes.changes import node_create
    from nodes.models import Command, CommandStatus, Image

    idle, _ = Host.objects.get_or_create(name=IDLE_HOST, defaults={"cpu_cores": 0, "memory_bytes": 0, "disk_bytes": 0})
    if Command.objects.filter(host=idle, status__in=[CommandStatus.PENDING, CommandStatus.ACKED]).exists():
        raise SystemExit(f"{IDLE_HOST} has open commands: it would not be idle")
    idle_token = agent_token_issue(host=idle, rotate=True)

    big = 2**62 // 4
    busy = Host.objects.create(
        name=f"bench-agent-results-{uuid.uuid4().hex[:8]}", cpu_cores=big, memory_bytes=big, disk_bytes=big
    )
    image = Image.objects.order_by("protocol", "version").first()
    for index in range(results):
        node_create(name=f"{busy.name}-{index:05d}", host_id=busy.pk, image_id=image.pk, properties={})
    busy_token = agent_token_issue(host=busy, rotate=True)
    pending = Command.objects.filter(host=busy, status=CommandStatus.PENDING)
    ids = [str(pk) for pk in pending.values_list("pk", flat=True)]
    return idle_token, busy_token, ids


def result_client(port, token, ids, threads, start_at, queue):
    """`threads` keep-alive connections, each reporting `succeeded` for its share of commands."""
    import http.client
    import json

    outcomes = []

    def client(share):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        latencies, statuses = [], {}
        time.sleep(max(0.0, start_at - time.time()))
        body = json.dumps({"outcome": "succeeded"})
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        for command_id in share:
            began = time.perf_counter()
            conn.request("POST", f"/api/v1/agent/commands/{command_id}/result/", body=body, headers=headers)
            answer = conn.getresponse()
            answer.read()
            latencies.append(time.perf_counter() - began)
            statuses[answer.status] = statuses.get(answer.status, 0) + 1
        outcomes.append((latencies, statuses, time.time()))

    pool = [threading.Thread(target=client, args=(ids[index::threads],)) for index in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    queue.put(outcomes)


def measure_results(port: int, token: str, ids: list[str], clients: int, threads: int) -> dict:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    start_at = time.time() + 2
    processes = [
        context.Process(target=result_client, args=(port, token, ids[index::clients], threads, start_at, queue))
        for index in range(clients)
    ]
    for process in processes:
        process.start()
    outcomes = [outcome for _ in processes for outcome in queue.get()]
    for process in processes:
        process.join()
    latencies = [value for lat, _, _ in outcomes for value in lat]
    statuses = {}
    for _, counts, _ in outcomes:
        for status, count in counts.items():
            statuses[status] = statuses.get(status, 0) + count
    elapsed = max(end for _, _, end in outcomes) - start_at
    return {
        "rate": statuses.get(200, 0) / elapsed,
        "statuses": dict(sorted(statuses.items())),
        "p50": percentile(latencies, 0.5) * 1000,
        "p99": percentile(latencies, 0.99) * 1000,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default="nodefleet_bench")
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--nodes-per-host", type=int, default=100)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--worker-class", default="gthread", help="gunicorn worker class (production's: gthread)")
    parser.add_argument("--worker-threads", type=int, default=4, help="threads per gthread worker")
    parser.add_argument("--seconds", type=float, default=10, help="per wrk phase")
    parser.add_argument("--rounds", type=int, default=3, help="healthz/poll phase pairs, alternating")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=16, help="wrk keep-alive connections")
    parser.add_argument("--results", type=int, default=2000, help="result reports (open commands prepared)")
    parser.add_argument("--clients", type=int, default=2, help="result client processes")
    parser.add_argument("--client-threads", type=int, default=4, help="keep-alive connections per result client")
    args = parser.parse_args()

    wrk = ensure_wrk()
    url = ensure_fleet(args.database, args.hosts, args.nodes_per_host)
    idle_token, busy_token, ids = prepare(args.results)
    from django.db import connections

    connections.close_all()

    port = free_port()
    server = start_gunicorn(url, port, args.worker_class, args.workers, args.worker_threads)
    try:
        base = f"http://127.0.0.1:{port}"
        options = {"seconds": args.seconds, "threads": args.threads, "connections": args.connections}
        run_wrk(wrk, f"{base}/healthz", seconds=2, threads=1, connections=2)  # warm every worker up
        rounds = []  # (healthz, poll), alternating, so a change in the machine's load hits both
        for _ in range(args.rounds):
            healthz = run_wrk(wrk, f"{base}/healthz", **options)
            poll = run_wrk(wrk, f"{base}/api/v1/agent/commands/", token=idle_token, **options)
            rounds.append((healthz, poll))
        results = measure_results(port, busy_token, ids, args.clients, args.client_threads)
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:  # a loaded machine: the figures are measured, keep them
            server.kill()
            server.wait()

    print(
        f"fleet: {args.hosts} hosts x {args.nodes_per_host} nodes; gunicorn {args.workers} workers; wrk "
        f"{args.threads} threads x {args.connections} connections, {args.seconds:g} s per phase"
    )
    for number, (healthz, poll) in enumerate(rounds, 1):
        print(
            f"  round {number}: GET /healthz {healthz['rate']:>8.1f} req/s "
            f"(p50 {healthz['p50']}, p99 {healthz['p99']});"
            f"  idle poll {poll['rate']:>8.1f} req/s (p50 {poll['p50']}, p99 {poll['p99']}, non-2xx {poll['non_2xx']})"
            f"  ratio {poll['rate'] / healthz['rate']:.2f}x"
        )
    print(
        f"  POST .../result/ (succeeded)  {results['rate']:>9.1f} req/s  p50 {results['p50']:.2f}ms  "
        f"p99 {results['p99']:.2f}ms  statuses {results['statuses']}  "
        f"({len(ids)} node_create commands, {args.clients * args.client_threads} keep-alive clients)"
    )
    ratios = sorted(poll["rate"] / healthz["rate"] for healthz, poll in rounds)
    print(f"  ratio poll / healthz, median of {len(ratios)} rounds: {ratios[len(ratios) // 2]:.2f}x (target >= 0.5x)")
    if any(poll["non_2xx"] for _, poll in rounds):
        raise SystemExit("the poll answered errors: the figure is not valid")


if __name__ == "__main__":
    main()
