"""The fleet at a glance (§12) along a curve of fleet sizes: the admin home and GET /api/v1/fleet/,
time and statements at each size, in the same run; the ratio of the largest to the smallest
(target <= 2x) and whether both run the same statements at every size.

    .venv/bin/python bench/fleet_page.py [--requests 7]
        [--fleets nf_fleet_bench_10k:100:100,nf_fleet_bench_100k:1000:100,nf_fleet_bench_1m:10000:100]

Each fleet (database:hosts:nodes-per-host) is migrated and, when empty, seeded in SQL (SEED: five
regions, reserves and ratios, some slot limits, draining and manual hosts, one node in 500 in each
of the few states, a day of agent outcomes), so the grouped sums and the partial index have
something to count. Served in-process by
Django's test client with production settings, signed in as a superuser. A page's time is the
median of --requests requests after one warm-up request. Past 2,000 hosts the page draws a
histogram per region instead of tiles: one statement replaces another, the count stays.
"""

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT

PAGES = [("admin home", "/admin/"), ("GET /api/v1/fleet/", "/api/v1/fleet/")]

GiB = 1024**3
#: The fleet in SQL (seed_demo's row-by-row bulk inserts take hours for 1,000,000 nodes on a shared
#: machine): hosts of 64 cores / 256 GiB / 8 TiB in five regions (every 50th draining, every 40th
#: manual, every 10th with 120 slots), nodes of 2 cores / 8 GiB / 40 GiB, one in 500 in each of the
#: few states in turn, counters equal to the nodes' sums; three images, a day of agent outcomes.
SEED = [
    "INSERT INTO nodes_image (id, protocol, version, min_cpu_cores, min_memory_bytes, min_disk_bytes) VALUES "
    f"(gen_random_uuid(), 'ethereum', '1.9.0', 2, {8 * GiB}, {40 * GiB}), "
    f"(gen_random_uuid(), 'ethereum', '1.10.0', 4, {16 * GiB}, {40 * GiB}), "
    f"(gen_random_uuid(), 'bitcoin', '27.0', 1, {4 * GiB}, {700 * GiB})",
    "INSERT INTO hosts_host (id, name, cpu_cores, memory_bytes, disk_bytes, node_count, node_cpu_cores, "
    "node_memory_bytes, node_disk_bytes, reserved_cpu_cores, reserved_memory_bytes, reserved_disk_bytes, "
    "cpu_allocation_ratio, memory_allocation_ratio, disk_allocation_ratio, max_nodes, region, scheduling) "
    f"SELECT gen_random_uuid(), 'host-' || lpad(n::text, 5, '0'), 64, {256 * GiB}, {8 * 1024 * GiB}, "
    f"%(per_host)s, 2 * %(per_host)s, {8 * GiB} * %(per_host)s, {40 * GiB} * %(per_host)s, 2, {4 * GiB}, 0, "
    "2, 1.5, 1, CASE WHEN n % 10 = 0 THEN 120 END, 'region-' || (n % 5), "
    "CASE WHEN n % 50 = 0 THEN 'draining' WHEN n % 40 = 0 THEN 'manual' ELSE 'automatic' END "
    "FROM generate_series(1, %(hosts)s) AS n",
    "INSERT INTO nodes_node (id, name, properties, cpu_cores, memory_bytes, disk_bytes, state, created_at, "
    "updated_at, host_id, image_id, auto_upgrade) "
    f"SELECT gen_random_uuid(), h.name || '-node-' || lpad(k::text, 3, '0'), '{{}}', 2, {8 * GiB}, {40 * GiB}, "
    "CASE WHEN (row_number() OVER ()) % 500 = 0 "
    "THEN (ARRAY['creating', 'upgrading', 'failed'])[1 + ((row_number() OVER ()) / 500) % 3] ELSE 'running' END, "
    "now(), now(), h.id, (SELECT id FROM nodes_image WHERE version = '1.9.0'), false "
    "FROM hosts_host h CROSS JOIN generate_series(1, %(per_host)s) AS k",
    "INSERT INTO nodes_nodelog (event, node_id, node_name, host_id, host_name, forced, force_requested, warnings, "
    "message, source, created_at) "
    "SELECT (ARRAY['create_succeeded', 'upgrade_succeeded', 'upgrade_failed', 'upgrade_rolled_back'])[1 + n % 4], "
    "gen_random_uuid(), 'node', NULL, 'host', false, false, '[]', '', 'api', now() - (n % 1440) * interval '1 minute' "
    "FROM generate_series(1, 2000) AS n",
]
SEED = [statement.replace(" % ", " %% ") for statement in SEED]  # psycopg's placeholders

ONE_FLEET = """
import json, statistics, sys, time
sys.path.insert(0, {root!r})
import os
os.environ.update(ALLOWED_HOSTS="testserver", SECURE_SSL_REDIRECT="false", SESSION_COOKIE_SECURE="false",
                  CSRF_COOKIE_SECURE="false")
from bench.common import ensure_database, database_url, setup_django
ensure_database({database!r})
setup_django(database_url({database!r}))
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client, override_settings
override_settings(STORAGES={{
    "default": {{"BACKEND": "django.core.files.storage.FileSystemStorage"}},
    "staticfiles": {{"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}},
}}).enable()
SEED = {seed!r}
with connection.cursor() as cursor:
    cursor.execute("SELECT count(*) FROM hosts_host")
    if not cursor.fetchone()[0]:
        for statement in SEED:
            cursor.execute(statement, {{"hosts": {hosts}, "per_host": {per_host}}})
    cursor.execute("ANALYZE")
    cursor.execute("SELECT count(*) FROM nodes_node")
    nodes = cursor.fetchone()[0]
user, _ = get_user_model().objects.get_or_create(
    username="bench-admin", defaults=dict(is_staff=True, is_superuser=True)
)
client = Client()
client.force_login(user)
from bench.common import measure_pages
print(json.dumps({{"nodes": nodes, **measure_pages(client, {pages!r}, {requests}, warm=True)}}))
"""


def run_fleet(spec: str, requests: int) -> dict:
    database, hosts, per_host = spec.split(":")
    code = ONE_FLEET.format(
        root=str(ROOT),
        database=database,
        hosts=int(hosts),
        per_host=int(per_host),
        pages=PAGES,
        requests=requests,
        seed=SEED,
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def shape(sql: str) -> str:
    """A statement without its literals (IN lists, ids): what is the same whatever the size."""
    return re.sub(r"\\(%s(, %s)*\\)", "(...)", re.sub(r"'[^']*'", "?", sql))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=7)
    parser.add_argument(
        "--fleets", default="nf_fleet_bench_10k:100:100,nf_fleet_bench_100k:1000:100,nf_fleet_bench_1m:10000:100"
    )
    args = parser.parse_args()
    began = time.perf_counter()
    fleets = [run_fleet(spec, args.requests) for spec in args.fleets.split(",")]
    print(f"the fleet at a glance, median of {args.requests} requests (statements); machine shared, ratios only")
    print(
        f"  {'page':<20}" + "".join(f" {fleet['nodes']:>12,} nodes" for fleet in fleets) + "   ratio  same statements"
    )
    for label, _path in PAGES:
        cells = "".join(f" {f[label]['ms']:>9.1f} ms ({len(f[label]['statements']):>2})" for f in fleets)
        first, last = fleets[0][label], fleets[-1][label]
        same = all(len(f[label]["statements"]) == len(first["statements"]) for f in fleets)
        kinds = sum(
            a != b for a, b in zip(map(shape, first["statements"]), map(shape, last["statements"]), strict=False)
        )
        print(
            f"  {label:<20}{cells}  {last['ms'] / first['ms']:>5.2f}x  "
            f"{'yes' if same else 'NO'} ({kinds} differ in text)  (target <= 2x)"
        )
    print(f"  ({time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    main()
