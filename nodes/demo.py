"""The demo fleet seed_demo writes: a fixed image catalogue and a deterministic fleet."""

import random
from decimal import Decimal

from nodes.models import Image, ImageProperty

GiB = 1024**3
TiB = 1024**4

#: (protocol, version, (min cpu, memory, disk), [(key, default, (add cpu, memory, disk), other values)])
CATALOGUE = [
    (
        "ethereum",
        "1.13.0",
        (2, 8 * GiB, 500 * GiB),
        [
            ("sync_mode", "snap", (2, 8 * GiB, 1536 * GiB), ["archive"]),
            ("rpc", "off", (1, 2 * GiB, 0), ["on"]),
        ],
    ),
    (
        "ethereum",
        "1.14.0",
        (4, 16 * GiB, 1 * TiB),
        [
            ("sync_mode", "snap", (2, 8 * GiB, 1536 * GiB), ["archive"]),
            ("rpc", "off", (1, 2 * GiB, 0), ["on"]),
        ],
    ),
    (
        "ethereum",
        "1.15.0",
        (4, 12 * GiB, 1 * TiB),
        [
            ("sync_mode", "snap", (2, 4 * GiB, 1024 * GiB), ["archive"]),
            ("rpc", "off", (1, 2 * GiB, 0), ["on"]),
            ("pruning", "on", (0, -4 * GiB, 256 * GiB), ["off"]),
        ],
    ),
    ("bitcoin", "26.0", (2, 4 * GiB, 600 * GiB), [("txindex", "0", (0, 1 * GiB, 100 * GiB), ["1"])]),
    ("bitcoin", "27.0", (2, 6 * GiB, 700 * GiB), [("txindex", "0", (0, 1 * GiB, 100 * GiB), ["1"])]),
    ("solana", "1.18.0", (12, 128 * GiB, 2 * TiB), []),
]

#: What one host of the demo fleet holds, per node it is sized for.
CAPACITY_PER_NODE = (8, 64 * GiB, 4 * TiB)


def ensure_catalogue() -> list[Image]:
    """Creates the catalogue's images and properties that are missing; returns all of them."""
    images = []
    for protocol, version, minimum, properties in CATALOGUE:
        image, created = Image.objects.get_or_create(
            protocol=protocol,
            version=version,
            defaults=dict(zip(("min_cpu_cores", "min_memory_bytes", "min_disk_bytes"), minimum, strict=True)),
        )
        if created:
            ImageProperty.objects.bulk_create(
                ImageProperty(
                    image=image,
                    key=key,
                    default_value=default,
                    **dict(zip(("add_cpu_cores", "add_memory_bytes", "add_disk_bytes"), adds, strict=True)),
                )
                for key, default, adds, _others in properties
            )
        images.append(image)
    return images


def other_values() -> dict[tuple[str, str, str], list[str]]:
    return {(p, v, key): others for p, v, _m, props in CATALOGUE for key, _d, _a, others in props}


def host_capacity(nodes_per_host: int, index: int) -> dict[str, int]:
    size = max(nodes_per_host, 4) * (1 + index % 3)  # hosts come in three sizes
    return dict(zip(("cpu_cores", "memory_bytes", "disk_bytes"), (size * c for c in CAPACITY_PER_NODE), strict=True))


#: The demo's regions: hosts alternate between them, but for one host without a region.
REGIONS = ("eu-1", "us-1")
#: The hosts (by index) that show the capacity model (§11): host-00002 overcommits CPU and
#: memory, host-00003 keeps a reserve, host-00004 has node slots, host-00005 is draining,
#: host-00008 is manual, host-00010 has no region.
OVERCOMMITTED, RESERVED, SLOTTED, DRAINING, MANUAL, NO_REGION = 1, 2, 3, 4, 7, 9


def host_model(nodes_per_host: int, index: int) -> dict:
    """Region, scheduling, ratios, reserve and slots of the demo's host number `index` (0-based):
    a few hosts differ from the defaults, so placement has something to choose and to refuse."""
    model = {"region": "" if index == NO_REGION else REGIONS[index % len(REGIONS)]}
    if index == OVERCOMMITTED:
        model.update(cpu_allocation_ratio=Decimal(4), memory_allocation_ratio=Decimal("1.5"))
    elif index == RESERVED:
        model.update(reserved_cpu_cores=4, reserved_memory_bytes=16 * GiB, reserved_disk_bytes=500 * GiB)
    elif index == SLOTTED:
        model.update(max_nodes=nodes_per_host + 2)
    elif index == DRAINING:
        model.update(scheduling="draining")
    elif index == MANUAL:
        model.update(scheduling="manual")
    return model


def node_config(rng: random.Random, image: Image, defaults: dict[str, str], others) -> dict[str, str]:
    """Most nodes run defaults; about one key in four is set to another value."""
    return {
        key: rng.choice(others[(image.protocol, image.version, key)]) if rng.random() < 0.25 else default
        for key, default in defaults.items()
    }
