"""manage.py place_nodes IMAGE --count N --name-prefix P: N nodes `<P>-1`…`<P>-N` of the
image's default config, each on the host placement chooses (§11), one node_create per node
(source `cli`); with --dry-run, the plan (where each would go) and nothing written.

Exit 0 when every node was placed (with --dry-run: would be), 1 when some or none were (each
refusal's detail is printed; an unknown IMAGE is a refusal, as in upgrade_node; the run stops at
the first `no_host_available`: the fleet is full for this node), 2 on a usage error. A progress
bar (stderr, a terminal only) follows large counts."""

import json
import sys

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from config.errors import ApplicationError, NoHostAvailable
from config.text import escape_unprintable
from config.units import RESOURCES, human_amount
from hosts.models import Source
from nodes.api.serializers import PlacementPlanSerializer
from nodes.changes import node_create, node_placement_plan
from nodes.selectors import image_by_id_or_label

#: Counts from which a terminal shows a progress bar.
PROGRESS_FROM = 20
MAX_COUNT = 1000


def _count(value: str) -> int:
    import argparse

    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from None
    if not 1 <= number <= MAX_COUNT:
        raise argparse.ArgumentTypeError(f"from 1 to {MAX_COUNT}")
    return number


def _requested(amounts: dict) -> str:
    return ", ".join(human_amount(name, amounts[name]) for name in RESOURCES)


class Command(BaseCommand):
    help = "Places N nodes of an image (IMAGE: id or protocol@version) on the hosts placement chooses."

    def add_arguments(self, parser):
        parser.add_argument("image", metavar="IMAGE", help="image id or protocol@version")
        parser.add_argument("--count", type=_count, required=True, help=f"how many nodes (1..{MAX_COUNT})")
        parser.add_argument("--name-prefix", required=True, help="nodes are named <prefix>-1, <prefix>-2, ...")
        parser.add_argument("--region", default=None, help='hosts of this region only ("": hosts without one)')
        parser.add_argument("--strategy", choices=["binpack", "spread"], default="binpack")
        parser.add_argument("--spread-protocol", action="store_true", help="fewer nodes of the protocol first")
        parser.add_argument("--dry-run", action="store_true", help="print the plan, write nothing")
        parser.add_argument("--json", action="store_true", help="one JSON document on stdout")

    def handle(self, *args, image, count, name_prefix, region, strategy, spread_protocol, dry_run, **options):
        as_json = options["json"]
        if not name_prefix.strip():
            raise CommandError("--name-prefix must not be empty.", returncode=2)
        placement = {"strategy": strategy, "region": region, "spread_protocol": spread_protocol}
        try:
            target = image_by_id_or_label(image)
            if dry_run:
                return self._plan(target, count, placement, as_json)
        except ApplicationError as error:
            if as_json:
                self.stdout.write(json.dumps({"error": error.as_problem()}))
            raise CommandError(escape_unprintable(error.detail), returncode=1) from None
        return self._place(target, count, name_prefix, placement, as_json)

    def _plan(self, image, count, placement, as_json):
        planned = node_placement_plan(image_id=image.pk, placement=placement, count=count)
        plan = planned.plan
        if as_json:
            self.stdout.write(json.dumps(PlacementPlanSerializer(planned).data, default=str))
        else:
            where = "any region" if placement["region"] is None else f"region {placement['region']!r}"
            self.stdout.write(
                f"Plan: {count} node(s) of {planned.image.label} ({_requested(plan.requested)} each), "
                f"{placement['strategy']}, {escape_unprintable(where)}:"
            )
            for number, row in enumerate(plan.placements, start=1):
                free = ", ".join(f"{human_amount(name, row['free_after'][name])}" for name in RESOURCES)
                self.stdout.write(
                    f"  {number:>4}  {escape_unprintable(row['host_name'])}  score {float(row['score']):.4f}  "
                    f"free after: {free}"
                )
            self.stdout.write(f"Would place {plan.placed} of {count}.")
        if plan.error is not None:
            raise CommandError(escape_unprintable(plan.error.detail), returncode=1)

    def _place(self, image, count, prefix, placement, as_json):
        placed, refusals = [], []
        with tqdm(
            total=count, unit="node", desc="placing", file=sys.stderr, disable=None if count >= PROGRESS_FROM else True
        ) as progress:
            for number in range(1, count + 1):
                name = f"{prefix}-{number}"
                try:
                    change = node_create(name=name, image_id=image.pk, placement=dict(placement), source=Source.CLI)
                except NoHostAvailable as error:
                    refusals.append((name, error))
                    break
                except ApplicationError as error:
                    refusals.append((name, error))
                else:
                    placed.append((name, change))
                progress.update(1)
        if as_json:
            self.stdout.write(
                json.dumps(
                    {
                        "image_id": str(image.pk),
                        "count": count,
                        "placed": len(placed),
                        "placements": [
                            {
                                "name": name,
                                "node_id": str(c.node.pk),
                                "host_id": str(c.host.pk),
                                "host_name": c.host.name,
                            }
                            for name, c in placed
                        ],
                        "refusals": [{"name": name, **error.as_problem()} for name, error in refusals],
                    }
                )
            )
        else:
            for name, change in placed:
                self.stdout.write(f"Placed {escape_unprintable(name)} on {escape_unprintable(change.host.name)}")
            self.stdout.write(f"Placed {len(placed)} of {count} node(s) of {image.protocol}@{image.version}.")
        if refusals:
            for name, error in refusals:
                self.stderr.write(f"{escape_unprintable(name)}: {escape_unprintable(error.detail)}")
            raise CommandError(f"{len(placed)} of {count} node(s) placed.", returncode=1)
