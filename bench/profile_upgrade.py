"""Profiles N service upgrades in one process (pyinstrument) and prints the top of the profile.

.venv/bin/python bench/profile_upgrade.py [--database nodefleet_bench] [--count 2000]
"""

import argparse
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ensure_fleet


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default="nodefleet_bench")
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--nodes-per-host", type=int, default=100)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--depth", type=int, default=14, help="lines of the call tree to show")
    args = parser.parse_args()
    ensure_fleet(args.database, args.hosts, args.nodes_per_host)

    from pyinstrument import Profiler

    from nodes.models import Image, Node
    from nodes.services import node_upgrade

    images = {}
    for image in Image.objects.all():
        images.setdefault(image.protocol, []).append(image.pk)
    work = list(Node.objects.filter(image__protocol="ethereum").values_list("pk", "image_id")[: args.count])
    rng = random.Random(1)
    profiler = Profiler(interval=0.0005)
    with profiler:
        for node_id, current in work:
            node_upgrade(node_id=node_id, image_id=rng.choice([i for i in images["ethereum"] if i != current]))
    print(profiler.output_text(unicode=False, color=False, show_all=False, short_mode=False))


if __name__ == "__main__":
    main()
