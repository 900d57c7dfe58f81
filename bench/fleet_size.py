"""Is upgrade latency flat in fleet size? Sequential upgrades (one process) on a fleet of 1,000
nodes and on one of 1,000,000, alternating rounds in the same run; prints p50/p99 and the ratio.

    .venv/bin/python bench/fleet_size.py [--count 1500] [--rounds 3]
"""

import argparse
import random
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT

FLEETS = {"small": ("nodefleet_bench_1k", 10, 100), "large": ("nodefleet_bench", 10_000, 100)}

ROUND = """
import random, sys, time, json
sys.path.insert(0, {root!r})
from bench.common import setup_django, database_url
setup_django(database_url({database!r}))
from nodes.models import Image, Node
from nodes.changes import node_upgrade
images = {{}}
for image in Image.objects.all():
    images.setdefault(image.protocol, []).append(image.pk)
work = list(Node.objects.filter(image__protocol="ethereum").order_by("?").values_list("pk", "image_id")[:{count}])
rng = random.Random()
latencies = []
for node_id, current in work:
    target = rng.choice([i for i in images["ethereum"] if i != current])
    began = time.perf_counter()
    node_upgrade(node_id=node_id, image_id=target, force=True)
    latencies.append(time.perf_counter() - began)
print(json.dumps(latencies[len(latencies) // 10:]))  # the first tenth warms caches up
"""


def main():
    import json

    from bench.common import percentile

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1500, help="upgrades per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for database, hosts, per_host in FLEETS.values():
        subprocess.run(
            [
                sys.executable,
                "-c",
                f"import sys; sys.path.insert(0, {str(ROOT)!r});"
                f"from bench.common import ensure_fleet; ensure_fleet({database!r}, {hosts}, {per_host})",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    samples = {name: [] for name in FLEETS}
    order = list(FLEETS)
    for _ in range(args.rounds):
        random.shuffle(order)
        for name in order:
            code = ROUND.format(root=str(ROOT), database=FLEETS[name][0], count=args.count)
            out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
            samples[name] += json.loads(out.strip().splitlines()[-1])
    p50 = {name: percentile(values, 0.5) * 1000 for name, values in samples.items()}
    for name, (database, hosts, per_host) in FLEETS.items():
        print(
            f"  {hosts * per_host:>9,} nodes ({database}): p50 {p50[name]:.2f} ms  "
            f"p99 {percentile(samples[name], 0.99) * 1000:.2f} ms  ({len(samples[name])} upgrades)"
        )
    print(f"  ratio p50 at 1,000,000 / at 1,000 nodes: {p50['large'] / p50['small']:.2f}x (target <= 1.2x)")


if __name__ == "__main__":
    main()
