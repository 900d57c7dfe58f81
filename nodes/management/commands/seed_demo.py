"""manage.py seed_demo: a demo fleet, idempotent, with consistent counters, in bulk. Its hosts
are in regions eu-1 and us-1 (one without a region), one overcommitted, one with a reserve,
one with node slots, one draining and one manual (nodes.demo.host_model), so placement (§11)
has something to choose and to refuse."""

import random
import uuid
from collections import defaultdict

from django.core.management.base import BaseCommand
from django.db import transaction
from django.db.models import F
from tqdm import tqdm

from hosts.locks import lock_hosts
from hosts.models import COUNTER_OF_RESOURCE, Host
from nodes.changes import image_spec
from nodes.demo import ensure_catalogue, host_capacity, host_model, node_config, other_values
from nodes.models import Node
from nodes.resources import Resources, required_allocation

HOSTS_PER_BATCH = 100


class Command(BaseCommand):
    help = "Creates a demo fleet (images, hosts, nodes). Running it again adds only what is missing."

    def add_arguments(self, parser):
        parser.add_argument("--hosts", type=int, default=20, help="number of hosts (default 20)")
        parser.add_argument("--nodes-per-host", type=int, default=8, help="nodes on each host (default 8)")

    def handle(self, *args, hosts: int, nodes_per_host: int, **options):
        if hosts < 0 or nodes_per_host < 0:
            self.stderr.write("--hosts and --nodes-per-host must be >= 0")
            raise SystemExit(2)
        images = ensure_catalogue()
        specs = {image.pk: image_spec(image) for image in images}
        others = other_values()
        created_hosts = created_nodes = 0
        with tqdm(total=hosts, unit="host", desc="seeding", disable=None) as progress:
            for start in range(0, hosts, HOSTS_PER_BATCH):
                indexes = range(start, min(start + HOSTS_PER_BATCH, hosts))
                new_hosts, new_nodes = self._seed_batch(indexes, nodes_per_host, images, specs, others)
                created_hosts += new_hosts
                created_nodes += new_nodes
                progress.update(len(indexes))
        self.stdout.write(
            f"Demo fleet: {created_hosts} host(s) and {created_nodes} node(s) created "
            f"({hosts} hosts x {nodes_per_host} nodes wanted, {len(images)} images)."
        )

    @transaction.atomic
    def _seed_batch(self, indexes, nodes_per_host, images, specs, others) -> tuple[int, int]:
        names = {f"host-{index + 1:05d}": index for index in indexes}
        existing = dict(Host.objects.filter(name__in=names).values_list("name", "id"))
        missing = [
            Host(
                id=uuid.uuid4(), name=name, **host_capacity(nodes_per_host, index), **host_model(nodes_per_host, index)
            )
            for name, index in names.items()
            if name not in existing
        ]
        Host.objects.bulk_create(missing)
        hosts = lock_hosts([*existing.values(), *(host.pk for host in missing)])
        taken = set(Node.objects.filter(host__in=hosts).values_list("name", flat=True))
        nodes, sums = [], defaultdict(Resources)
        for host in hosts:
            rng = random.Random(host.name)
            for number in range(1, nodes_per_host + 1):
                image = rng.choice(images)
                config = node_config(rng, image, specs[image.pk].defaults(), others)
                name = f"{host.name}-node-{number:03d}"
                if name in taken:
                    continue
                allocation = required_allocation(specs[image.pk], config)
                nodes.append(Node(name=name, host=host, image=image, properties=config, **allocation.as_dict()))
                sums[host.pk] = sums[host.pk] + allocation
        Node.objects.bulk_create(nodes, batch_size=2000)
        counts = defaultdict(int)
        for node in nodes:
            counts[node.host_id] += 1
        for host_pk, added in sums.items():
            Host.objects.filter(pk=host_pk).update(
                node_count=F("node_count") + counts[host_pk],
                **{COUNTER_OF_RESOURCE[name]: F(COUNTER_OF_RESOURCE[name]) + amount for name, amount in added.items()},
            )
        return len(missing), len(nodes)
