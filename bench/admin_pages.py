"""Admin list pages at 10,000 and at 1,000,000 nodes: time and statements of each page, in the
same run, and the ratio between the fleets (the name searches should stay within 2x).

    .venv/bin/python bench/admin_pages.py [--requests 9]
        [--small nodefleet_bench_10k:100:100] [--large nodefleet_bench:10000:100]

Each fleet (database:hosts:nodes-per-host) is seeded with seed_demo if needed and served
in-process by Django's test client, signed in as a superuser, with production settings. A
page's time is the median of --requests requests after one warm-up request.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT

#: (label, path): names that exist in both demo fleets (host-NNNNN, host-NNNNN-node-NNN).
PAGES = [
    ("nodes list", "/admin/nodes/node/"),
    ("nodes search, a full name", "/admin/nodes/node/?q=host-00042-node-007"),
    ("nodes search, part of a name", "/admin/nodes/node/?q=00042-node-00"),
    ("hosts list", "/admin/hosts/host/"),
    ("hosts search, part of a name", "/admin/hosts/host/?q=host-0004"),
    ("hosts drifted filter (the audit)", "/admin/hosts/host/?drift=yes"),
]
SEARCHES = [label for label, _path in PAGES if "search" in label]

ONE_FLEET = """
import json, statistics, sys, time
sys.path.insert(0, {root!r})
import os
os.environ.update(ALLOWED_HOSTS="testserver", SECURE_SSL_REDIRECT="false", SESSION_COOKIE_SECURE="false",
                  CSRF_COOKIE_SECURE="false")
from bench.common import ensure_fleet
ensure_fleet({database!r}, {hosts}, {per_host})
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client, override_settings
# No collectstatic here: static URLs without the manifest (the pages' HTML is all that is timed).
override_settings(STORAGES={{
    "default": {{"BACKEND": "django.core.files.storage.FileSystemStorage"}},
    "staticfiles": {{"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}},
}}).enable()
user, _ = get_user_model().objects.get_or_create(
    username="bench-admin", defaults=dict(is_staff=True, is_superuser=True)
)
client = Client()
client.force_login(user)
from bench.common import measure_pages
results = measure_pages(client, {pages!r}, {requests})
print(json.dumps({{label: {{**r, "statements": len(r["statements"])}} for label, r in results.items()}}))
"""


def run_fleet(spec: str, requests: int) -> dict:
    database, hosts, per_host = spec.split(":")
    code = ONE_FLEET.format(
        root=str(ROOT), database=database, hosts=int(hosts), per_host=int(per_host), pages=PAGES, requests=requests
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=9)
    parser.add_argument("--small", default="nodefleet_bench_10k:100:100")
    parser.add_argument("--large", default="nodefleet_bench:10000:100")
    args = parser.parse_args()
    began = time.perf_counter()
    small, large = run_fleet(args.small, args.requests), run_fleet(args.large, args.requests)
    nodes = [int(spec.split(":")[1]) * int(spec.split(":")[2]) for spec in (args.small, args.large)]
    print(f"admin pages, median of {args.requests} requests (statements per page)")
    print(f"  {'page':<36} {nodes[0]:>12,} nodes {nodes[1]:>12,} nodes   ratio")
    for label, _path in PAGES:
        s, big = small[label], large[label]
        target = "  (target <= 2x)" if label in SEARCHES else ""
        print(
            f"  {label:<36} {s['ms']:>9.1f} ms ({s['statements']}) {big['ms']:>9.1f} ms ({big['statements']})"
            f"  {big['ms'] / s['ms']:>5.2f}x{target}"
        )
    print(f"  ({time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    main()
