"""Rollout throughput (§10): one protocol's nodes rolled to a new image by a rollout run by 2
db_worker processes whose simulated agents answer in-process (each upgrade's command acked and
its result reported by nodes.agent.lifecycle as soon as the upgrade commits), against a loop doing
the same per-node work — node_upgrade, the agent's ack, its result — in as many processes, in
the same run; and the workers' peak RSS. So what the ratio measures is the rollout machinery.

    .venv/bin/python bench/rollout_throughput.py [--nodes 100000] [--hosts 1000] [--workers 2]
        [--database nodefleet_bench_rollouts]

The database is re-seeded every run: half the hosts' nodes go through the loop, the other half
through the rollout. Targets: rollout >= 0.7x the loop; RSS <= 200 MB.
"""

import argparse
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT, database_url, setup_django

DATABASE = "nodefleet_bench_rollouts"
GiB = 1024**3


def recreate_database(name: str) -> str:
    import psycopg

    with psycopg.connect(database_url("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return database_url(name)


def seed(hosts: int, nodes: int):
    """`hosts` roomy hosts, `nodes` running nodes of protocol `bench` on v1 spread over them
    (counters equal to their sums), and the target image v2."""
    from hosts.models import Host
    from nodes.models import Image, Node

    v1 = Image.objects.create(
        protocol="bench", version="1.0", min_cpu_cores=2, min_memory_bytes=GiB, min_disk_bytes=GiB
    )
    v2 = Image.objects.create(
        protocol="bench", version="2.0", min_cpu_cores=3, min_memory_bytes=GiB, min_disk_bytes=GiB
    )
    per_host = nodes // hosts
    host_rows = [
        Host(
            name=f"bench-{h:05d}",
            cpu_cores=10**6,
            memory_bytes=10**6 * GiB,
            disk_bytes=10**6 * GiB,
            node_count=per_host,
            node_cpu_cores=2 * per_host,
            node_memory_bytes=GiB * per_host,
            node_disk_bytes=GiB * per_host,
        )
        for h in range(hosts)
    ]
    Host.objects.bulk_create(host_rows, batch_size=2000)
    node_rows = (
        Node(
            id=uuid.uuid4(),
            name=f"bench-{h:05d}-{n:04d}",
            host=host,
            image=v1,
            properties={},
            cpu_cores=2,
            memory_bytes=GiB,
            disk_bytes=GiB,
            state="running",
        )
        for h, host in enumerate(host_rows)
        for n in range(per_host)
    )
    batch = []
    for row in node_rows:
        batch.append(row)
        if len(batch) == 5000:
            Node.objects.bulk_create(batch)
            batch = []
    Node.objects.bulk_create(batch)
    return v2, [host.pk for host in host_rows]


def agent_answers(command_id, host_id) -> None:
    """What a host's agent does with an upgrade command: ack it, then report it succeeded."""
    from nodes.agent.lifecycle import command_ack, command_result

    command_ack(command_id=command_id, host_id=host_id)
    command_result(command_id=command_id, host_id=host_id, outcome="succeeded")


def loop_worker(path: str, image_id: str) -> None:
    """One process of the loop: for each node in the file, node_upgrade, then its agent's ack and
    result, one after the other. Prints `ready` once Django is up and starts on a line of stdin."""
    setup_django(os.environ["DATABASE_URL"])
    from nodes.changes import node_upgrade
    from nodes.models import Command

    node_ids = Path(path).read_text().split()
    print("ready", flush=True)
    sys.stdin.readline()
    for node_id in node_ids:
        node_upgrade(node_id=node_id, image_id=image_id)
        # The agent learns its command (as the rollout's agents do, by one read of the row).
        pending = Command.objects.filter(node_id=node_id, status="pending")
        command_id, host_id = pending.values_list("pk", "host_id").get()
        agent_answers(command_id, host_id)


def loop_phase(image, host_ids, workers: int, url: str) -> tuple[int, float]:
    """The baseline: the same per-node work as the rollout's (upgrade, ack, result) by `workers`
    processes, each its share of the nodes in the rollout's order."""
    import tempfile

    from nodes.models import Node

    node_ids = [
        str(pk)
        for pk in Node.objects.filter(host_id__in=host_ids).order_by("host__name", "name").values_list("pk", flat=True)
    ]
    env = {**os.environ, "DATABASE_URL": url, "LOG_LEVEL": "WARNING"}
    with tempfile.TemporaryDirectory(prefix="nf-bench-loop-") as folder:
        processes = []
        for number in range(workers):
            path = Path(folder) / f"{number}.txt"
            path.write_text("\n".join(node_ids[number::workers]))
            command = [sys.executable, __file__, "--loop-worker", str(path), str(image.pk)]
            processes.append(
                subprocess.Popen(command, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            )
        for process in processes:
            assert process.stdout.readline().strip() == "ready"
        began = time.perf_counter()
        for process in processes:
            process.stdin.write("go\n")
            process.stdin.flush()
        for process in processes:
            assert process.wait() == 0
        elapsed = time.perf_counter() - began
    return len(node_ids), elapsed


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def agent_worker() -> None:
    """A db_worker whose host agents live in it: every upgrade a rollout commits is reported
    `succeeded` at once (its own transaction, after the upgrade's commit)."""
    setup_django(os.environ["DATABASE_URL"])
    from django.core.management import call_command
    from django.db import transaction

    from nodes.rollouts import services
    from nodes.rollouts.models import RolloutNode

    upgrade_row = services._upgrade_row

    def report(row_pk):
        command_id, host_id = RolloutNode.objects.filter(pk=row_pk).values_list("command_id", "host_id").get()
        agent_answers(command_id, host_id)

    def upgrade_and_answer(rollout_id, row_pk, actor):
        done = upgrade_row(rollout_id, row_pk, actor)
        if done == "upgraded":
            transaction.on_commit(lambda: report(row_pk))
        return done

    services._upgrade_row = upgrade_and_answer
    call_command("db_worker", "--no-startup-delay", "--interval", "0.01", "--no-reload", verbosity=0)


def rollout_phase(image, host_ids, workers: int, url: str) -> tuple[int, float, list[float]]:
    from nodes.rollouts.models import Rollout
    from nodes.rollouts.plan import selection_check
    from nodes.rollouts.services import rollout_create

    env = {**os.environ, "DATABASE_URL": url, "LOG_LEVEL": "WARNING", "ROLLOUT_TICK_SECONDS": "1"}
    command = [sys.executable, __file__, "--agent-worker"]
    processes = [subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL) for _ in range(workers)]
    try:
        time.sleep(3)  # the workers are up (Django loaded) before the clock starts
        selection = selection_check(
            image_id=image.pk, host_ids=host_ids, canary=0, batch_size=1000, pause_after_canary=False
        )
        began = time.perf_counter()
        rollout = rollout_create(selection=selection, start=True)
        while Rollout.objects.values_list("state", flat=True).get(pk=rollout.pk) == "running":
            time.sleep(0.05)
        elapsed = time.perf_counter() - began
        rss = [peak_rss_mb(process.pid) for process in processes]
        rollout.refresh_from_db()
        assert rollout.state == "completed", rollout.state
        return rollout.nodes.filter(status="succeeded").count(), elapsed, rss
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--hosts", type=int, default=1_000)
    parser.add_argument("--workers", type=int, default=2, help="db_worker processes, and the loop's processes")
    parser.add_argument("--database", default=DATABASE, help="re-created every run")
    parser.add_argument("--agent-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--loop-worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.agent_worker:
        return agent_worker()
    if args.loop_worker:
        return loop_worker(*args.loop_worker)

    url = recreate_database(args.database)
    setup_django(url)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    began = time.perf_counter()
    image, host_ids = seed(args.hosts, args.nodes)
    print(f"seeded {args.nodes} nodes on {args.hosts} hosts in {time.perf_counter() - began:.1f} s")
    half = len(host_ids) // 2

    loop_nodes, loop_seconds = loop_phase(image, host_ids[:half], args.workers, url)
    rollout_nodes, rollout_seconds, rss = rollout_phase(image, host_ids[half:], args.workers, url)

    from tests.invariants import counter_drift

    loop_rate, rollout_rate = loop_nodes / loop_seconds, rollout_nodes / rollout_seconds
    print(
        f"loop ({args.workers} processes: node_upgrade, ack, result): {loop_nodes} nodes in "
        f"{loop_seconds:.1f} s = {loop_rate:.0f} nodes/s"
    )
    print(
        f"rollout ({args.workers} workers, their agents answering at once): {rollout_nodes} nodes in "
        f"{rollout_seconds:.1f} s = {rollout_rate:.0f} nodes/s"
    )
    print(f"ratio rollout / loop: {rollout_rate / loop_rate:.2f}x (target >= 0.7x)")
    print(f"worker peak RSS: {', '.join(f'{mb:.0f} MB' for mb in rss)} (target <= 200 MB)")
    print(f"counter drift after: {len(counter_drift())} host(s)")


if __name__ == "__main__":
    main()
