"""Placement (§11) against a create that names its host: node_create through the service, W
worker processes, in regions of 100, 1,000 and 10,000 hosts, phases alternating in one run;
then the plan of 1,000 nodes on 10,000 hosts and headroom on 10,000 hosts (time, statements).

    .venv/bin/python bench/placement_throughput.py [--workers 4] [--seconds 6]

The database `nf_placement_bench` is rebuilt each run: three regions of automatic hosts large
enough never to fill during the run (so every create succeeds and the rate is the cost of the
choice, not of refusals), one image. A named create picks a random host of the 1,000-host region;
a placed create asks for that region (binpack unless --strategy spread)."""

import argparse
import multiprocessing
import random
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import database_url, ensure_database, percentile, setup_django

DATABASE = "nf_placement_bench"
REGIONS = {"r100": 100, "r1000": 1000, "r10000": 10_000}


def build(url: str) -> None:
    import psycopg

    with psycopg.connect(database_url("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
    ensure_database(DATABASE)
    setup_django(url)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from hosts.models import Host
    from nodes.models import Image

    for region, count in REGIONS.items():
        Host.objects.bulk_create(
            [
                Host(
                    name=f"{region}-{index:05d}",
                    cpu_cores=10**6 + index,
                    memory_bytes=2**50 + index * 2**30,
                    disk_bytes=2**55,
                    region=region,
                )
                for index in range(count)
            ],
            batch_size=2000,
        )
    Image.objects.create(protocol="eth", version="1.0", min_cpu_cores=2, min_memory_bytes=2**33, min_disk_bytes=2**39)


def worker(mode, url, region, strategy, ready, go, seconds, queue):
    setup_django(url)
    from django.db import connection

    from hosts.models import Host
    from nodes.changes import node_create
    from nodes.models import Image

    image = Image.objects.get().pk
    hosts = list(Host.objects.filter(region="r1000").values_list("pk", flat=True))
    rng = random.Random()
    latencies, done = [], 0
    ready.put(True)
    go.wait()
    end = time.time() + seconds
    while time.time() < end:
        began = time.perf_counter()
        name = f"b-{uuid.uuid4().hex[:16]}"
        if mode == "named":
            node_create(name=name, host_id=rng.choice(hosts), image_id=image)
        else:
            node_create(name=name, image_id=image, placement={"region": region, "strategy": strategy})
        latencies.append(time.perf_counter() - began)
        done += 1
    connection.close()
    queue.put((done, latencies))


def run_phase(mode, url, region, strategy, workers, seconds):
    context = multiprocessing.get_context("spawn")
    queue, ready, go = context.Queue(), context.Queue(), context.Event()
    procs = [
        context.Process(target=worker, args=(mode, url, region, strategy, ready, go, seconds, queue))
        for _ in range(workers)
    ]
    for proc in procs:
        proc.start()
    for _ in procs:  # spawned processes set Django up first; all start together
        ready.get()
    go.set()
    results = [queue.get() for _ in procs]
    for proc in procs:
        proc.join()
    done = sum(count for count, _ in results)
    latencies = [value for _, values in results for value in values]
    return {"rate": done / seconds, "p50": percentile(latencies, 0.5) * 1000, "p95": percentile(latencies, 0.95) * 1000}


def plan_and_headroom():
    from django.db import connection

    from hosts.placement import Requirement, headroom, placement_plan

    requirement = Requirement(requested={"cpu_cores": 2, "memory_bytes": 2**33, "disk_bytes": 2**39}, region="r10000")
    out = {}
    for label, call in (
        ("plan of 1,000 nodes, 10,000 hosts", lambda: placement_plan(requirement, 1000)),
        ("headroom, 10,000 hosts", lambda: headroom(requirement.requested, region="r10000")),
    ):
        statements = []

        def capture(execute, sql, params, many, context, statements=statements):
            statements.append(sql)
            return execute(sql, params, many, context)

        times = []
        for _ in range(3):
            statements.clear()
            began = time.perf_counter()
            with connection.execute_wrapper(capture):
                call()
            times.append(time.perf_counter() - began)
        out[label] = (min(times) * 1000, len(statements), any("nodes_node" in sql for sql in statements))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=6)
    parser.add_argument("--strategy", choices=["binpack", "spread"], default="binpack")
    args = parser.parse_args()
    url = database_url(DATABASE)
    build(url)
    print(f"placement_throughput: {args.workers} processes, {args.seconds:g} s per phase, strategy {args.strategy}")
    phases = [("named", "r1000"), ("placed", "r1000"), ("named", "r1000"), ("placed", "r1000")]
    phases += [("placed", "r100"), ("placed", "r10000")]
    results = {}
    for mode, region in phases:
        result = run_phase(mode, url, region, args.strategy, args.workers, args.seconds)
        results.setdefault((mode, region), []).append(result)
        print(
            f"  {mode:<6} {region:<7} {result['rate']:8.1f} creates/s  p50 {result['p50']:6.1f} ms  "
            f"p95 {result['p95']:6.1f} ms"
        )

    def rate(mode, region):
        values = results[(mode, region)]
        return sum(value["rate"] for value in values) / len(values)

    named = rate("named", "r1000")
    print(f"  placed / named (1,000 hosts, same run): {rate('placed', 'r1000') / named:.2f}x")
    for region, count in REGIONS.items():
        placed = rate("placed", region)
        print(f"  placed, {count:>6,} hosts: {placed:8.1f} creates/s ({placed / named:.2f}x named)")
    for label, (ms, statements, nodes) in plan_and_headroom().items():
        print(f"  {label}: {ms:.0f} ms, {statements} statement(s), nodes table read: {'yes' if nodes else 'no'}")


if __name__ == "__main__":
    main()
