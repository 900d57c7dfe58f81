"""manage.py add_image PROTOCOL VERSION: the operator's path to image_create (source `cli`),
which also makes the auto-upgrade rollout of §10.

Exit 0 when the image is added (it prints the image and, when one was made, the rollout's id and
state), 1 when image_create refuses it (the error's detail, no traceback: protocol@version taken,
control characters, an amount past 64 bits...), 2 on a usage error (argparse: a missing
argument, a non-integer amount, a --property not of the form KEY=DEFAULT[:CPU,MEMORY,DISK])."""

import argparse
import json
import re

from django.core.management.base import BaseCommand, CommandError
from django.core.serializers.json import DjangoJSONEncoder

from config.errors import ApplicationError
from config.text import escape_unprintable
from config.units import RESOURCES, human_amount
from hosts.models import Source
from nodes.admin.forms import requirements
from nodes.api.serializers import ImageCreatedSerializer
from nodes.images import image_create
from nodes.models import Image

#: The adds after the last `:` of a --property: three comma-separated integers, each may be empty (none).
ADDS = re.compile(r"(-?\d*),(-?\d*),(-?\d*)")


def image_property(text: str) -> dict:
    """`KEY=DEFAULT[:CPU,MEMORY,DISK]` as image_create takes a property. The default may hold `:`
    and `=`; only a last `:` followed by three comma-separated integers (empty: none) is the adds."""
    key, sep, rest = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=DEFAULT[:CPU,MEMORY,DISK]")
    prop = {"key": key, "default_value": rest}
    head, colon, tail = rest.rpartition(":")
    if colon and (adds := ADDS.fullmatch(tail)):
        prop["default_value"] = head
        for name, amount in zip(RESOURCES, adds.groups(), strict=True):
            prop[f"add_{name}"] = int(amount) if amount else None
    return prop


class Command(BaseCommand):
    help = "Adds an image; auto_upgrade nodes it is newer for (PEP 440, same major) get a rollout to it."

    def add_arguments(self, parser):
        parser.add_argument("protocol", metavar="PROTOCOL")
        parser.add_argument("version", metavar="VERSION")
        parser.add_argument("--min-cpu-cores", type=int, default=0, metavar="N")
        parser.add_argument("--min-memory-bytes", type=int, default=0, metavar="N")
        parser.add_argument("--min-disk-bytes", type=int, default=0, metavar="N")
        parser.add_argument(
            "--property",
            dest="properties",
            action="append",
            default=[],
            type=image_property,
            metavar="KEY=DEFAULT[:CPU,MEMORY,DISK]",
            help="a property and what a node whose value differs from DEFAULT adds (repeatable; "
            "an empty amount adds nothing), e.g. archive=off:0,0,2199023255552",
        )
        parser.add_argument(
            "--json", dest="as_json", action="store_true", help="one JSON document: the API's representation"
        )

    def handle(self, *args, protocol, version, properties, as_json: bool, **options):
        try:
            created = image_create(
                protocol=protocol,
                version=version,
                min_cpu_cores=options["min_cpu_cores"],
                min_memory_bytes=options["min_memory_bytes"],
                min_disk_bytes=options["min_disk_bytes"],
                properties=properties,
                source=Source.CLI,
            )
        except ApplicationError as error:
            raise CommandError(escape_unprintable(error.detail), returncode=1) from None
        image, rollout = Image.objects.prefetch_related("properties").get(pk=created.image.pk), created.rollout
        if as_json:
            data = ImageCreatedSerializer(image, context={"rollout": rollout}).data
            data["auto_rollout_state"] = rollout.state if rollout else None
            self.stdout.write(json.dumps(data, cls=DjangoJSONEncoder, indent=2))
            return
        lines = [f"Added {image} ({image.pk}): minimum {requirements(image)}"]
        for prop in image.properties.all():
            adds = ", ".join(
                human_amount(name, amount) for name in RESOURCES if (amount := getattr(prop, f"add_{name}")) is not None
            )
            lines.append(f"  {prop.key}={prop.default_value}" + (f" (otherwise adds {adds})" if adds else ""))
        if rollout:
            lines.append(f"Auto-upgrade: rollout {rollout.pk}, {rollout.state}.")
        self.stdout.write("\n".join(map(escape_unprintable, lines)))
