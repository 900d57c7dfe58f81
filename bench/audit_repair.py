"""Audit and repair at scale, beside bare SQL doing the same work, in the same run.

Seeds (idempotently, with seed_demo) a fleet in a dedicated database, drifts 1% of the hosts'
counters by SQL, then, round after round on the same data:

  audit   audit_resources (in-process, output discarded)  vs  bare SQL: the counts of the
          summary, the one grouped host query, one statement finding the (image, config,
          allocation) combinations that are wrong, and (only when some are) their nodes
  repair  host_counters_repair (batches of 500, locked)   vs  bare SQL: one UPDATE ... FROM
          the grouped truth, recording each change (INSERT of the old/new counters)

and prints medians, ratios and peak memory (this process's maxrss, and the commands run as an
operator would, each in its own process).

    .venv/bin/python bench/audit_repair.py [--database nodefleet_bench_audit] [--hosts 10000]
        [--nodes-per-host 100] [--rounds 3]
"""

import argparse
import io
import logging
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT, ensure_fleet

# 1% of the hosts (names ending in 00), each counter too high or too low in turn.
DRIFT = """
WITH chosen AS (SELECT id, row_number() OVER (ORDER BY name) AS k FROM hosts_host WHERE name LIKE '%00')
UPDATE hosts_host h SET
    node_count = node_count + CASE k % 4 WHEN 0 THEN 1 ELSE 0 END,
    node_cpu_cores = node_cpu_cores + CASE k % 4 WHEN 1 THEN -1 ELSE 0 END,
    node_memory_bytes = node_memory_bytes + CASE k % 4 WHEN 2 THEN 1073741824 ELSE 0 END,
    node_disk_bytes = node_disk_bytes + CASE k % 4 WHEN 3 THEN -1 ELSE 0 END
FROM chosen WHERE h.id = chosen.id
"""

TRUTH = """
SELECT h.id, h.name, h.node_count, h.node_cpu_cores, h.node_memory_bytes, h.node_disk_bytes,
       h.cpu_cores, h.memory_bytes, h.disk_bytes,
       count(n.id) AS count, coalesce(sum(n.cpu_cores), 0) AS cpu, coalesce(sum(n.memory_bytes), 0) AS memory,
       coalesce(sum(n.disk_bytes), 0) AS disk
FROM hosts_host h LEFT JOIN nodes_node n ON n.host_id = h.id
GROUP BY h.id
"""
DRIFTED = """(node_count <> count OR node_cpu_cores <> cpu OR node_memory_bytes <> memory OR node_disk_bytes <> disk)"""

BARE_HOST_AUDIT = f"""
SELECT * FROM ({TRUTH}) t
WHERE {DRIFTED} OR cpu > cpu_cores OR memory > memory_bytes OR disk > disk_bytes
ORDER BY name
"""

# Required allocation of every distinct (image, config, allocation) in SQL: max(min, min + adds of
# the properties whose (string) value differs from their default); the wrong ones, then (only when
# there are some) their nodes with their hosts: the two statements the app runs too.
BARE_WRONG_COMBINATIONS = """
WITH combination AS MATERIALIZED (
    SELECT DISTINCT image_id, properties, cpu_cores, memory_bytes, disk_bytes FROM nodes_node
), required AS MATERIALIZED (
    SELECT c.*, jsonb_typeof(c.properties) IS DISTINCT FROM 'object'
                OR EXISTS (SELECT 1 FROM jsonb_each(c.properties) e WHERE jsonb_typeof(e.value) <> 'string') AS corrupt,
           greatest(i.min_cpu_cores, i.min_cpu_cores + coalesce(a.cpu, 0)) AS want_cpu,
           greatest(i.min_memory_bytes, i.min_memory_bytes + coalesce(a.memory, 0)) AS want_memory,
           greatest(i.min_disk_bytes, i.min_disk_bytes + coalesce(a.disk, 0)) AS want_disk
    FROM combination c
    JOIN nodes_image i ON i.id = c.image_id
    LEFT JOIN LATERAL (
        SELECT sum(p.add_cpu_cores) AS cpu, sum(p.add_memory_bytes) AS memory, sum(p.add_disk_bytes) AS disk
        FROM nodes_imageproperty p
        WHERE p.image_id = c.image_id
          AND jsonb_typeof(c.properties) = 'object'
          AND jsonb_typeof(c.properties -> p.key) = 'string'
          AND c.properties ->> p.key <> p.default_value
    ) a ON true
)
SELECT image_id, properties::text, cpu_cores, memory_bytes, disk_bytes FROM required
WHERE corrupt OR cpu_cores <> want_cpu OR memory_bytes <> want_memory OR disk_bytes <> want_disk
"""
BARE_WRONG_NODES = """
SELECT n.id, n.name, h.name
FROM nodes_node n JOIN hosts_host h ON h.id = n.host_id
JOIN unnest(%s::uuid[], %s::text[], %s::bigint[], %s::bigint[], %s::bigint[]) AS w(image_id, config, cpu, memory, disk)
  ON w.image_id = n.image_id AND w.cpu = n.cpu_cores AND w.memory = n.memory_bytes AND w.disk = n.disk_bytes
 AND w.config IS NOT DISTINCT FROM n.properties::text
ORDER BY h.name, n.name
"""

# What the summary says was checked.
BARE_COUNTS = "SELECT (SELECT count(*) FROM hosts_host), (SELECT count(*) FROM nodes_node)"

BARE_REPAIR = f"""
WITH truth AS ({TRUTH}),
fixed AS (
    UPDATE hosts_host h
    SET node_count = t.count, node_cpu_cores = t.cpu, node_memory_bytes = t.memory, node_disk_bytes = t.disk
    FROM truth t
    WHERE h.id = t.id AND {DRIFTED.replace("node_", "t.node_")}
    RETURNING t.*
)
INSERT INTO hosts_counterrepair (host_id, old_node_count, old_node_cpu_cores, old_node_memory_bytes,
    old_node_disk_bytes, new_node_count, new_node_cpu_cores, new_node_memory_bytes, new_node_disk_bytes,
    source, created_at)
SELECT id, node_count, node_cpu_cores, node_memory_bytes, node_disk_bytes, count, cpu, memory, disk, 'cli', now()
FROM fixed
"""


def setup(database: str, hosts: int, nodes_per_host: int) -> None:
    """Creates (if missing), migrates and seeds the database; Django set up on it; statistics fresh."""
    started = time.perf_counter()
    ensure_fleet(database, hosts, nodes_per_host)
    print(f"migrate + seed_demo (seeding, or checking an earlier seed): {time.perf_counter() - started:.1f} s")
    sql("VACUUM ANALYZE")


def timed(work) -> tuple[float, object]:
    started = time.perf_counter()
    result = work()
    return time.perf_counter() - started, result


def sql(statement: str, params=None):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else cursor.rowcount


def bare_audit():
    sql(BARE_COUNTS)
    hosts, wrong = sql(BARE_HOST_AUDIT), sql(BARE_WRONG_COMBINATIONS)
    return hosts, sql(BARE_WRONG_NODES, [list(column) for column in zip(*wrong, strict=True)]) if wrong else []


def app_audit() -> str:
    from django.core.management import CommandError, call_command

    out = io.StringIO()
    try:
        call_command("audit_resources", stdout=out, stderr=io.StringIO())
    except CommandError as error:
        assert error.returncode == 1, error
    return out.getvalue().splitlines()[-1]


def bare_repair():
    from django.db import transaction

    with transaction.atomic():
        return sql(BARE_REPAIR)


def app_repair():
    from hosts.repair import host_counters_repair

    return len(host_counters_repair(batch_size=500).changes)


def drifted_hosts() -> int:
    return len(sql(f"SELECT 1 FROM ({TRUTH}) t WHERE {DRIFTED}"))


def operator_run(*args) -> tuple[float, float, str]:
    """(seconds, peak MiB, last line) of `manage.py ARGS` in its own process, output to a pipe."""
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "manage.py", *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    last = ""
    for line in child.stdout:  # read as it streams, keeping only the last line
        last = line.rstrip()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    return seconds, usage.ru_maxrss / 1024, f"exit {os.waitstatus_to_exitcode(status)}: {last[:100]}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default="nodefleet_bench_audit")
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--nodes-per-host", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    setup(args.database, args.hosts, args.nodes_per_host)
    # The audit logs each finding at WARNING: formatted and written, to /dev/null, not the screen.
    logging.getLogger().handlers[0].setStream(open(os.devnull, "w"))  # noqa: SIM115
    from django.db import connection

    from hosts.models import CounterRepair

    hosts, nodes = sql("SELECT (SELECT count(*) FROM hosts_host), (SELECT count(*) FROM nodes_node)")[0]
    print(f"fleet: {hosts} hosts, {nodes} nodes ({connection.settings_dict['NAME']})")
    sql("DELETE FROM hosts_counterrepair")
    times = {name: [] for name in ("bare audit", "audit", "bare repair", "repair")}
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for round_ in range(1, args.rounds + 1):
        sql(DRIFT)
        drifted = drifted_hosts()
        seconds, (host_rows, node_rows) = timed(bare_audit)
        times["bare audit"].append(seconds)
        seconds, summary = timed(app_audit)
        times["audit"].append(seconds)
        assert len(node_rows) == 0 and sum(row[2:6] != row[9:13] for row in host_rows) == drifted
        seconds, fixed = timed(bare_repair)
        times["bare repair"].append(seconds)
        assert fixed == drifted and drifted_hosts() == 0
        sql(DRIFT)
        seconds, fixed = timed(app_repair)
        times["repair"].append(seconds)
        assert fixed == drifted and drifted_hosts() == 0
        print(
            f"round {round_}: {drifted} drifted hosts; "
            + ", ".join(f"{name} {values[-1]:.2f} s" for name, values in times.items())
            + f"; audit said: {summary}"
        )
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert CounterRepair.objects.count() == 2 * args.rounds * drifted

    median = {name: statistics.median(values) for name, values in times.items()}
    print("\nmedian of", args.rounds, "rounds (in-process, same connection):")
    for name in ("bare audit", "audit", "bare repair", "repair"):
        print(f"  {name:<12} {median[name]:7.2f} s")
    print(f"  audit / bare SQL  = {median['audit'] / median['bare audit']:.2f}x  (target <= 1.5x)")
    print(f"  repair / bare SQL = {median['repair'] / median['bare repair']:.2f}x  (target <= 2x)")
    print(f"  peak memory of this process: {rss_after:.0f} MiB (after setup: {rss_before:.0f} MiB; target <= 200 MB)")

    sql(DRIFT)
    print("\nas an operator runs them (own process, output piped; 1% of hosts drifted):")
    for command in (
        ["audit_resources"],
        ["audit_resources", "--json"],
        ["repair_counters", "--dry-run"],
        ["repair_counters", "--json"],
        ["repair_counters"],
    ):
        seconds, peak, last = operator_run(*command)
        print(f"  manage.py {' '.join(command):<28} {seconds:6.2f} s  peak {peak:4.0f} MiB  ({last})")


if __name__ == "__main__":
    main()
