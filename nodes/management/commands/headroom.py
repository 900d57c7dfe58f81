"""manage.py headroom [IMAGE ...] [--region R] [--json]: how many more nodes of each image's
default config the automatic hosts take (§11), per region — host rows only, nothing written.

No IMAGE: every image. Exit 0; 2 on a usage error (an unknown IMAGE included: there is nothing
to refuse, only a name to correct)."""

import json

from django.core.management.base import BaseCommand, CommandError

from config.errors import ApplicationError
from config.text import escape_unprintable
from config.units import RESOURCES, human_amount
from nodes.changes import images_headroom
from nodes.selectors import image_by_id_or_label


def _nodes(value) -> str:
    return "unbounded" if value is None else str(value)


class Command(BaseCommand):
    help = "How many more nodes of each image (IMAGE: id or protocol@version; none: every image) the fleet takes."

    def add_arguments(self, parser):
        parser.add_argument("images", metavar="IMAGE", nargs="*", help="image id or protocol@version")
        parser.add_argument("--region", default=None, help='hosts of this region only ("": hosts without one)')
        parser.add_argument("--json", action="store_true", help="one JSON document on stdout")

    def handle(self, *args, images, region, **options):
        try:
            ids = [image_by_id_or_label(ref).pk for ref in images] if images else None
        except ApplicationError as error:
            raise CommandError(escape_unprintable(error.detail), returncode=2) from None
        rows = images_headroom(image_ids=ids, region=region)
        if options["json"]:
            document = [
                {
                    "image_id": str(row.image.id),
                    "image": row.image.label,
                    "requested": row.headroom.requested,
                    "nodes": row.headroom.nodes,
                    "hosts_with_room": row.headroom.hosts_with_room,
                    "regions": row.headroom.regions,
                }
                for row in rows
            ]
            self.stdout.write(json.dumps(document))
            return
        for row in rows:
            needs = ", ".join(human_amount(name, row.headroom.requested[name]) for name in RESOURCES)
            self.stdout.write(
                f"{escape_unprintable(row.image.label)} ({needs}): {_nodes(row.headroom.nodes)} more node(s) "
                f"on {row.headroom.hosts_with_room} host(s)"
            )
            for entry in row.headroom.regions:
                label = escape_unprintable(entry["region"]) if entry["region"] else "(no region)"
                self.stdout.write(f"  {label}: {_nodes(entry['nodes'])}")
        if not rows:
            self.stdout.write("No images.")
