"""What recording outside writes (SPEC §13) costs, in the same run, phases alternating (and
their order, round by round):

1. Nodefleet's own upgrade path (node_upgrade through the service, W worker processes) with the
   triggers installed and with them dropped: the ratio must stay >= 0.95x (their WHEN is false
   for a marked connection, so each row costs one condition).
2. The triggers' WHEN alone, server-side: a PL/pgSQL loop of single-row UPDATEs of a small
   unlogged table in a marked session, with the same WHEN and function on it and without: the
   condition's cost per row (an upgrade writes two tracked rows: its node and its host).
3. A bulk UPDATE of N node allocations (default 100,000) from a connection without Nodefleet's
   mark (recorded: N OutsideWrite rows in the same transaction) and with the mark (not recorded),
   each with the triggers and without; rolled back every time, so the fleet never changes.

    .venv/bin/python bench/outside_writes.py [--hosts 1000 --nodes-per-host 100] [--seconds 8] [--rounds 3]
                                             [--rows 100000] [--bulk-rounds 1]

Bounded for a shared machine: a 100,000-node fleet of its own (nf_outside_bench, seeded once).
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ensure_fleet
from bench.upgrade_throughput import load_plan, run_phase

BULK = "UPDATE nodes_node SET cpu_cores = cpu_cores + 1 WHERE id IN (SELECT id FROM nodes_node ORDER BY id LIMIT %s)"


def triggers(on: bool) -> None:
    """Installs the triggers as the migration left them (on) or drops them (off)."""
    from django.db import connection

    from hosts.outside import TRIGGER, install_triggers, recording

    if on:
        meta = recording() or triggers.meta
        with connection.schema_editor() as editor:
            install_triggers(editor, host_columns=meta["host_columns"], node_columns=meta["node_columns"])
        return
    triggers.meta = recording()
    with connection.cursor() as cursor:
        for table in ("hosts_host", "nodes_node"):
            cursor.execute(f"DROP TRIGGER IF EXISTS {TRIGGER} ON {table}")


WHEN_TABLE = "bench_outside_when"
WHEN_TRIGGER = (
    f"CREATE TRIGGER bench_when AFTER UPDATE OF v ON {WHEN_TABLE} FOR EACH ROW "
    "WHEN (current_setting('nodefleet.app', true) IS DISTINCT FROM '1') "
    "EXECUTE FUNCTION nodefleet_record_outside_write('id', 'v')"
)
WHEN_LOOP = f"""
DO $$
BEGIN
  FOR i IN 1..%s LOOP UPDATE {WHEN_TABLE} SET v = v + 1 WHERE id = i; END LOOP;
END $$"""


def when_loop(url: str, rows: int, *, trigger: bool) -> float:
    """Seconds for `rows` single-row UPDATEs in a marked session (PL/pgSQL, rolled back) of a
    small unlogged table, with the triggers' WHEN on it (the same condition, the same function,
    never called) or without: the condition's own cost per row, without client or indexes."""
    import psycopg

    with psycopg.connect(url, options="-c nodefleet.app=1", autocommit=True) as conn:
        if not conn.execute("SELECT to_regclass(%s)", [WHEN_TABLE]).fetchone()[0]:
            conn.execute(f"CREATE UNLOGGED TABLE {WHEN_TABLE} (id int PRIMARY KEY, v bigint) WITH (fillfactor = 50)")
            conn.execute(f"INSERT INTO {WHEN_TABLE} SELECT g, 0 FROM generate_series(1, %s) g", [rows])
            conn.execute(f"VACUUM ANALYZE {WHEN_TABLE}")
        conn.execute(f"DROP TRIGGER IF EXISTS bench_when ON {WHEN_TABLE}")
        if trigger:
            conn.execute(WHEN_TRIGGER)
        with conn.transaction(force_rollback=True):
            began = time.perf_counter()
            conn.execute(WHEN_LOOP.replace("%s", str(int(rows))))
            return time.perf_counter() - began


def bulk_update(url: str, rows: int, *, marked: bool) -> dict:
    """Seconds for one bulk UPDATE of `rows` nodes (rolled back) and the outside writes it made."""
    import psycopg

    options = {"options": "-c nodefleet.app=1"} if marked else {}
    with psycopg.connect(url, application_name="bench-bulk", **options) as conn:
        began = time.perf_counter()
        conn.execute(BULK, [rows])
        elapsed = time.perf_counter() - began
        recorded = conn.execute("SELECT count(*) FROM hosts_outsidewrite").fetchone()[0]
        conn.rollback()
    return {"seconds": elapsed, "recorded": recorded}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default="nf_outside_bench")
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--nodes-per-host", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sample", type=int, default=5000, help="nodes the upgrade workers upgrade")
    parser.add_argument("--rows", type=int, default=100_000, help="nodes the bulk UPDATE changes")
    parser.add_argument("--loop-rows", type=int, default=50_000, help="single-row UPDATEs per WHEN loop")
    parser.add_argument("--bulk-rounds", type=int, default=1, help="bulk UPDATEs per variant (~30 s each here)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    url = ensure_fleet(args.database, args.hosts, args.nodes_per_host)
    plan = load_plan(args.workers, args.sample)
    upgrades = {"with": [], "without": []}
    bulk = {(mark, state): [] for mark in ("outside", "nodefleet") for state in ("with", "without")}
    loops = {"with": [], "without": []}
    try:
        for round_number in range(args.rounds):  # the order alternates, so neither side always goes first
            for state in ("with", "without") if round_number % 2 == 0 else ("without", "with"):
                triggers(state == "with")
                upgrades[state].append(run_phase("service", url, args.workers, args.seconds, plan)["rate"])
                loops[state].append(when_loop(url, args.loop_rows, trigger=state == "with"))
        for _ in range(args.bulk_rounds):
            for state in ("without", "with"):
                triggers(state == "with")
                for mark in ("outside", "nodefleet"):
                    bulk[(mark, state)].append(bulk_update(url, args.rows, marked=mark == "nodefleet"))
    finally:
        triggers(True)

    rate = {state: round(statistics.mean(runs), 1) for state, runs in upgrades.items()}
    report = {
        "fleet": f"{args.hosts} hosts x {args.nodes_per_host} nodes",
        "workers": args.workers,
        "rounds": args.rounds,
        "upgrades_per_s": rate,
        "upgrade_ratio_with_to_without": round(rate["with"] / rate["without"], 3),
        "loop_rows": args.loop_rows,
        "loop_with_triggers_s": round(statistics.median(loops["with"]), 3),
        "loop_without_triggers_s": round(statistics.median(loops["without"]), 3),
        "bulk_update_rows": args.rows,
    }
    report["when_us_per_row"] = round(
        (report["loop_with_triggers_s"] - report["loop_without_triggers_s"]) / args.loop_rows * 1e6, 2
    )
    report["loop_ratio_without_to_with"] = round(report["loop_without_triggers_s"] / report["loop_with_triggers_s"], 3)
    for (mark, state), runs in bulk.items():
        report[f"bulk_{mark}_{state}_triggers_s"] = round(statistics.median(run["seconds"] for run in runs), 3)
        report[f"bulk_{mark}_{state}_triggers_recorded"] = runs[-1]["recorded"]
    for mark in ("outside", "nodefleet"):
        with_s, without_s = report[f"bulk_{mark}_with_triggers_s"], report[f"bulk_{mark}_without_triggers_s"]
        report[f"bulk_{mark}_ratio_with_to_without"] = round(with_s / without_s, 2)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"fleet {report['fleet']}, {args.workers} workers, {args.rounds} round(s) of {args.seconds:g} s per phase")
    print(
        f"node_upgrade: {rate['with']}/s with the triggers, {rate['without']}/s without: "
        f"{report['upgrade_ratio_with_to_without']}x (target >= 0.95x)"
    )
    print(
        f"{args.loop_rows} single-row UPDATEs, marked, server-side: {report['loop_with_triggers_s']} s with the "
        f"WHEN, {report['loop_without_triggers_s']} s without: {report['loop_ratio_without_to_with']}x the throughput; "
        f"the WHEN costs {report['when_us_per_row']} us per row"
    )
    marks = (("outside", "an outside connection (recorded)"), ("nodefleet", "Nodefleet's mark (not recorded)"))
    for mark, who in marks:
        print(
            f"bulk UPDATE of {args.rows} nodes by {who}: {report[f'bulk_{mark}_with_triggers_s']} s with the "
            f"triggers ({report[f'bulk_{mark}_with_triggers_recorded']} recorded), "
            f"{report[f'bulk_{mark}_without_triggers_s']} s without: {report[f'bulk_{mark}_ratio_with_to_without']}x"
        )


if __name__ == "__main__":
    main()
