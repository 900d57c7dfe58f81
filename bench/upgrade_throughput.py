"""Upgrade throughput against its limit: node_upgrade through the service vs the same work as
bare SQL through psycopg (the fewest statements that do it), W worker processes each, and vs
pgbench running the same statements (prepared, C client: the database's own limit here), in the
same run, phases alternating. Prints the rates, their ratios, latencies and statements per upgrade.

    .venv/bin/python bench/upgrade_throughput.py [--hosts 10000 --nodes-per-host 100] [--seconds 20]

pgbench (shipped with PostgreSQL, found on PATH or under /usr/lib/postgresql/*/bin) runs a
script the bench writes: the nodes to upgrade are numbered in a table `bench_pgbench_nodes`
(node, host, names, image and a target image, refreshed each round); each transaction takes
one at random (one indexed read outside the transaction, which the service does not need), then
BEGIN, the service's own locked read (nodes/locks.py), the counter delta, the node update, the
NodeLog and Command inserts, COMMIT. It does not compute the allocation, so it writes the
node's own values back and a zero delta: the same statements and rows, none of the arithmetic.
"""

import argparse
import glob
import json
import multiprocessing
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ensure_fleet, percentile, setup_django

# The bare-SQL version of an upgrade: lock node and host, read both images, then five writes
# (the node's pending command superseded, counters, node, NodeLog, Command), one statement each.
LOCK = """
    SELECT n.image_id, n.properties, n.cpu_cores, n.memory_bytes, n.disk_bytes, n.name,
           h.id, h.name, h.cpu_cores, h.memory_bytes, h.disk_bytes,
           h.node_cpu_cores, h.node_memory_bytes, h.node_disk_bytes
    FROM nodes_node n JOIN hosts_host h ON h.id = n.host_id
    WHERE n.id = %s FOR NO KEY UPDATE OF n, h"""
IMAGES = """
    SELECT i.id, i.protocol, i.version, i.min_cpu_cores, i.min_memory_bytes, i.min_disk_bytes,
           p.key, p.default_value, p.add_cpu_cores, p.add_memory_bytes, p.add_disk_bytes
    FROM nodes_image i LEFT JOIN nodes_imageproperty p ON p.image_id = i.id
    WHERE i.id = ANY(%s)"""
UPDATE_HOST = """
    UPDATE hosts_host SET node_cpu_cores = node_cpu_cores + %s, node_memory_bytes = node_memory_bytes + %s,
           node_disk_bytes = node_disk_bytes + %s WHERE id = %s"""
UPDATE_NODE = """
    UPDATE nodes_node SET image_id = %s, properties = %s, state = 'upgrading', cpu_cores = %s,
           memory_bytes = %s, disk_bytes = %s, updated_at = now() WHERE id = %s"""
INSERT_LOG = """
    INSERT INTO nodes_nodelog (event, node_id, node_name, host_id, host_name, old_image_id, new_image_id,
           old_cpu_cores, old_memory_bytes, old_disk_bytes, new_cpu_cores, new_memory_bytes, new_disk_bytes,
           forced, warnings, source, created_at)
    VALUES ('upgrade_started', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, false, %s, 'api', now())"""
SUPERSEDE = """
    UPDATE nodes_command SET status = 'superseded', finished_at = now() WHERE node_id = %s AND status = 'pending'"""
INSERT_COMMAND = """
    INSERT INTO nodes_command (host_id, node_id, kind, payload, created_at)
    VALUES (%s, %s, 'node_upgrade', %s, now())"""


def sql_upgrade(conn, node_id, image_id):
    from psycopg.types.json import Jsonb

    from config.units import BIGINT_MAX
    from nodes.resources import ImageSpec, PropertySpec, Resources, carry_over, required_allocation

    with conn.transaction():
        (old_image, properties, *recorded), host_row = _split(conn.execute(LOCK, [node_id]).fetchone())
        specs = {}
        for row in conn.execute(IMAGES, [[old_image, image_id]]).fetchall():
            spec = specs.setdefault(row[0], ImageSpec(row[0], row[1], row[2], Resources(*row[3:6]), ()))
            if row[6] is not None:
                adds = Resources(*(amount or 0 for amount in row[8:11]))
                props = (*spec.properties, PropertySpec(row[6], row[7], adds))
                specs[row[0]] = ImageSpec(spec.id, spec.protocol, spec.version, spec.minimum, props)
        old, new = specs[old_image], specs[image_id]
        config, warnings = carry_over(properties, old, new)
        allocation = required_allocation(new, config)
        before = Resources(*recorded[:3])
        delta = allocation - before
        host_id, host_name, *capacity_and_used = host_row
        capacity, used = capacity_and_used[:3], capacity_and_used[3:]
        for amount, change, limit in zip(used, delta, capacity, strict=True):
            if amount + change < 0 or amount + change > BIGINT_MAX or (change > 0 and amount + change > limit):
                raise RuntimeError("refused")
        conn.execute(SUPERSEDE, [node_id])
        conn.execute(UPDATE_HOST, [*delta, host_id])
        conn.execute(UPDATE_NODE, [image_id, Jsonb(config), *allocation, node_id])
        log = [node_id, recorded[3], host_id, host_name, old_image, image_id, *before, *allocation, Jsonb(warnings)]
        conn.execute(INSERT_LOG, log)
        sides = {"from": {"image_id": str(old_image)}, "to": {"image_id": str(image_id), "properties": config}}
        conn.execute(INSERT_COMMAND, [host_id, node_id, Jsonb(sides)])


def _split(row):
    return row[:6], row[6:]


def worker(mode, url, work, images_by_protocol, start_at, seconds, queue):
    """One process: upgrades its own nodes (disjoint from other workers') to random other images."""
    setup_django(url)
    import psycopg

    from nodes.changes import node_upgrade

    conn = psycopg.connect(url) if mode == "sql" else None
    rng = random.Random()
    latencies, refused = [], 0
    time.sleep(max(0.0, start_at - time.time()))
    deadline = time.time() + seconds
    while time.time() < deadline:
        index = rng.randrange(len(work))
        node_id, current, protocol = work[index]
        target = rng.choice([image for image in images_by_protocol[protocol] if image != current])
        began = time.perf_counter()
        try:
            if mode == "sql":
                sql_upgrade(conn, node_id, target)
            else:
                node_upgrade(node_id=node_id, image_id=target)
            work[index] = (node_id, target, protocol)
        except Exception:
            refused += 1
        latencies.append(time.perf_counter() - began)
    queue.put((mode, len(latencies), refused, latencies))


PGBENCH_TABLE = "bench_pgbench_nodes"

# The upgrade's statements for pgbench: the locked read, then the writes one statement each
# ("separate", as the service wrote them before) or as one data-modifying CTE ("merged", the
# shape of config.db.statements.write_together). No arithmetic: the node keeps its image and
# allocation, the counters change by zero; the node's open command is superseded as the service does.
PGBENCH_HEAD = """\\set k random(1, {count})
SELECT node_id, host_id, node_name, host_name, image_id, target FROM {table} WHERE k = :k \\gset
BEGIN;
{locked_read};
"""
SUPERSEDE_SQL = (
    "UPDATE nodes_command SET status = 'superseded', finished_at = now()"
    " WHERE node_id = :node_id AND status = 'pending'"
)
HOST_SQL = (
    "UPDATE hosts_host SET node_cpu_cores = node_cpu_cores + 0, node_memory_bytes = node_memory_bytes + 0,"
    " node_disk_bytes = node_disk_bytes + 0 WHERE id = :host_id"
)
NODE_SQL = (
    "UPDATE nodes_node SET image_id = :image_id, properties = properties, state = 'upgrading', cpu_cores = cpu_cores,"
    " memory_bytes = memory_bytes, disk_bytes = disk_bytes, updated_at = now() WHERE id = :node_id"
)
LOG_COLUMNS = (
    "INSERT INTO nodes_nodelog (event, node_id, node_name, host_id, host_name, actor_id, source, forced, warnings,"
    " created_at, old_image_id, new_image_id, old_cpu_cores, old_memory_bytes, old_disk_bytes, new_cpu_cores,"
    " new_memory_bytes, new_disk_bytes)"
)
LOG_VALUES = (
    "'upgrade_started', :node_id, :node_name, :host_id, :host_name, NULL, 'api', false, '[]'::jsonb,"
    " now(), :image_id, :target, 1, 1, 1, 1, 1, 1"
)
COMMAND_COLUMNS = "INSERT INTO nodes_command (host_id, node_id, kind, payload, created_at)"
COMMAND_VALUES = """:host_id, :node_id, 'node_upgrade', '{{"from": {{}}, "to": {{}}}}'::jsonb, now()"""
PGBENCH_SEPARATE = (
    PGBENCH_HEAD
    + ";\n".join(
        [
            SUPERSEDE_SQL,
            HOST_SQL,
            NODE_SQL,
            f"{LOG_COLUMNS} VALUES ({LOG_VALUES})",
            f"{COMMAND_COLUMNS} VALUES ({COMMAND_VALUES})",
        ]
    )
    + ";\nCOMMIT;\n"
)
PGBENCH_MERGED = (
    PGBENCH_HEAD
    + f"WITH guard AS ({SUPERSEDE_SQL} RETURNING 1), ok AS (SELECT true AS ok FROM (SELECT count(*) FROM guard) g),"
    + f" added AS ({HOST_SQL} AND (SELECT ok FROM ok) RETURNING 1),"
    + f" updated AS ({NODE_SQL} AND (SELECT ok FROM ok) RETURNING 1),"
    + f" inserted_0 AS ({LOG_COLUMNS} SELECT {LOG_VALUES} FROM ok WHERE ok.ok RETURNING 1),"
    + f" inserted_1 AS ({COMMAND_COLUMNS} SELECT {COMMAND_VALUES} FROM ok WHERE ok.ok RETURNING 1)"
    + " SELECT ok FROM ok;\nCOMMIT;\n"
)


def pgbench_binary() -> str:
    found = shutil.which("pgbench") or next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/pgbench"))), None)
    if not found:
        raise SystemExit("pgbench not found (it ships with PostgreSQL: apt-get install postgresql-client)")
    return found


def pgbench_scripts(plan) -> dict[str, str]:
    """Numbers the plan's nodes in PGBENCH_TABLE (as they are now); returns the two scripts."""
    from django.db import connection

    from nodes.locks import _statement

    nodes = [entry for share in plan["work"] for entry in share]
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {PGBENCH_TABLE}")
        cursor.execute(
            f"CREATE TABLE {PGBENCH_TABLE} AS SELECT row_number() OVER () AS k, n.id AS node_id, n.host_id, "
            "n.name AS node_name, h.name AS host_name, n.image_id, n.image_id AS target "
            "FROM nodes_node n JOIN hosts_host h ON h.id = n.host_id WHERE n.id = ANY(%s)",
            [[node for node, _current, _protocol in nodes]],
        )
        cursor.execute(f"ALTER TABLE {PGBENCH_TABLE} ADD PRIMARY KEY (k)")
        cursor.execute(  # the target: another image of the node's protocol
            f"UPDATE {PGBENCH_TABLE} b SET target = (SELECT i.id FROM nodes_image i JOIN nodes_image c "
            "ON c.protocol = i.protocol WHERE c.id = b.image_id AND i.id <> b.image_id LIMIT 1)"
        )
        cursor.execute(f"ANALYZE {PGBENCH_TABLE}")
    locked_read = _statement(True).replace("%s", ":target", 1).replace("%s", ":node_id", 1)
    return {
        name: script.format(count=len(nodes), table=PGBENCH_TABLE, locked_read=locked_read)
        for name, script in (("pgbench, separate", PGBENCH_SEPARATE), ("pgbench, merged", PGBENCH_MERGED))
    }


def run_pgbench(url, workers, seconds, script) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".sql", prefix="nodefleet-pgbench-") as file:
        file.write(script)
        file.flush()
        command = [pgbench_binary(), "-n", "-M", "prepared", "-c", str(workers), "-j", str(workers)]
        command += ["-T", str(int(seconds)), "-f", file.name, url]
        done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"pgbench failed ({done.returncode}): {done.stderr[-3000:]}")
    output = done.stdout
    rate = float(re.search(r"tps = ([0-9.]+)", output).group(1))
    latency = float(re.search(r"latency average = ([0-9.]+) ms", output).group(1))
    failed = re.search(r"number of failed transactions: (\d+)", output)
    return {"rate": rate, "latency_avg_ms": latency, "failed": int(failed.group(1)) if failed else 0}


def run_phase(mode, url, workers, seconds, plan):
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    start_at = time.time() + 3  # after every worker has set Django up
    processes = [
        context.Process(target=worker, args=(mode, url, plan["work"][i], plan["images"], start_at, seconds, queue))
        for i in range(workers)
    ]
    for process in processes:
        process.start()
    results = [queue.get() for _ in processes]
    for process in processes:
        process.join()
    latencies = [value for result in results for value in result[3]]
    done = sum(result[1] - result[2] for result in results)
    return {"rate": done / seconds, "refused": sum(r[2] for r in results), "latencies": latencies}


def load_plan(workers, sample):
    from nodes.models import Image, Node

    images = {}
    for image in Image.objects.all():
        images.setdefault(image.protocol, []).append(image.pk)
    nodes = list(
        Node.objects.filter(image__protocol__in=[p for p, ids in images.items() if len(ids) > 1])
        .order_by("?")
        .values_list("pk", "image_id", "image__protocol")[:sample]
    )
    return {"images": images, "work": [nodes[i::workers] for i in range(workers)]}


def statements_per_upgrade(plan):
    from django.db import connection

    from nodes.changes import node_upgrade

    node_id, current, protocol = plan["work"][0][0]
    target = next(image for image in plan["images"][protocol] if image != current)
    statements = []

    def capture(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        node_upgrade(node_id=node_id, image_id=target)
    plan["work"][0][0] = (node_id, target, protocol)
    return statements


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default="nodefleet_bench")
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--nodes-per-host", type=int, default=100)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--rounds", type=int, default=2, help="the phases alternate this many times")
    parser.add_argument("--sample", type=int, default=20_000, help="nodes the workers upgrade")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    url = ensure_fleet(args.database, args.hosts, args.nodes_per_host)
    plan = load_plan(args.workers, args.sample)
    statements = statements_per_upgrade(plan)
    scripts = pgbench_scripts(plan)
    phases = {"service": [], "sql": []}
    pgbench = {name: [] for name in scripts}
    for _ in range(args.rounds):
        for mode in ("service", "sql"):
            phases[mode].append(run_phase(mode, url, args.workers, args.seconds, plan))
        for name, script in scripts.items():
            pgbench[name].append(run_pgbench(url, args.workers, args.seconds, script))
    report = {"fleet": f"{args.hosts} hosts x {args.nodes_per_host} nodes", "workers": args.workers}
    for name, runs in pgbench.items():
        report[name] = {
            "upgrades_per_s": round(sum(run["rate"] for run in runs) / len(runs), 1),
            "latency_avg_ms": round(sum(run["latency_avg_ms"] for run in runs) / len(runs), 2),
            "failed": sum(run["failed"] for run in runs),
        }
    for mode, runs in phases.items():
        latencies = [value for run in runs for value in run["latencies"]]
        report[mode] = {
            "upgrades_per_s": round(sum(run["rate"] for run in runs) / len(runs), 1),
            "refused": sum(run["refused"] for run in runs),
            "p50_ms": round(percentile(latencies, 0.5) * 1000, 2),
            "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        }
    report["ratio_service_to_sql"] = round(report["service"]["upgrades_per_s"] / report["sql"]["upgrades_per_s"], 2)
    for name in pgbench:
        limit = report[name]["upgrades_per_s"]
        report[f"ratio service / {name}"] = round(report["service"]["upgrades_per_s"] / limit, 2)
        report[f"ratio bare SQL / {name}"] = round(report["sql"]["upgrades_per_s"] / limit, 2)
    report["statements_per_upgrade"] = len(statements)
    report["statements"] = [" ".join(sql.split())[:90] for sql in statements]
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"fleet: {report['fleet']}, {args.workers} worker processes, {args.rounds} x {args.seconds:g} s per mode")
    for mode in ("service", "sql"):
        r = report[mode]
        print(f"  {mode:<8} {r['upgrades_per_s']:>8.1f} upgrades/s  p50 {r['p50_ms']} ms  p99 {r['p99_ms']} ms")
    for name in pgbench:
        r = report[name]
        print(f"  {name:<18} {r['upgrades_per_s']:>8.1f} upgrades/s  latency average {r['latency_avg_ms']} ms")
    print(f"  ratio service / bare SQL: {report['ratio_service_to_sql']}x (target >= 0.5x)")
    for name in pgbench:
        print(
            f"  ratio service / {name}: {report[f'ratio service / {name}']}x; "
            f"bare SQL / {name}: {report[f'ratio bare SQL / {name}']}x"
        )
    print(f"  statements per upgrade (besides BEGIN/COMMIT): {len(statements)}")
    for sql in report["statements"]:
        print(f"    {sql}")


if __name__ == "__main__":
    main()
