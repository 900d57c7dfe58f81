"""A small fleet for the audit and repair tests, and drift injected as an operator's stray SQL
would: plain UPDATEs around the application."""

import json

from django.db import connection

from nodes.audit import CONFIG_FIELD
from nodes.models import Node
from tests.factories import GiB, HostFactory, ImageFactory, ImagePropertyFactory, TiB, place_node


def sql(statement: str, *params) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def set_counter(host, field: str, change: int) -> None:
    sql(f"UPDATE hosts_host SET {field} = {field} + %s WHERE id = %s", change, host.pk)


def set_config(node, raw_json: str | None) -> None:
    """Stores `raw_json` (None: SQL NULL) as the node's config, as it is, around the app."""
    sql("UPDATE nodes_node SET properties = %s::jsonb WHERE id = %s", raw_json, node.pk)


def ethereum_image(version="1.0", **minimum):
    """2 cores, 8 GiB, 500 GiB; `rpc` (off) adds 1 core and 2 GiB, `sync` (snap) adds 2 cores,
    8 GiB and 1 TiB of disk when set to another value."""
    image = ImageFactory(
        protocol="ethereum",
        version=version,
        **{"min_cpu_cores": 2, "min_memory_bytes": 8 * GiB, "min_disk_bytes": 500 * GiB, **minimum},
    )
    ImagePropertyFactory(image=image, key="rpc", default_value="off", add_cpu_cores=1, add_memory_bytes=2 * GiB)
    ImagePropertyFactory(
        image=image, key="sync", default_value="snap", add_cpu_cores=2, add_memory_bytes=8 * GiB, add_disk_bytes=TiB
    )
    return image


def fleet(hosts: int, image=None, prefix="h"):
    """`hosts` hosts named h00, h01...; each with node `<host>-a` (defaults: 2 cores, 8 GiB,
    500 GiB) and `<host>-b` (rpc on: 3 cores, 10 GiB, 500 GiB). Counters exact."""
    image = image or ethereum_image()
    made = []
    for index in range(hosts):
        host = HostFactory(name=f"{prefix}{index:02d}")
        place_node(host=host, image=image, name=f"{host.name}-a")
        place_node(host=host, image=image, name=f"{host.name}-b", properties={"rpc": "on"})
        made.append(host)
    return made


def canonical(value):
    """A finding's value in a hashable form (configs as sorted JSON text)."""
    return json.dumps(value, sort_keys=True) if isinstance(value, dict | list) or value is None else value


def node(name):
    return Node.objects.get(name=name)


# Each host of the fleet holds 2 nodes: 5 cores, 18 GiB, 1000 GiB.
TRUTH = {"node_count": 2, "node_cpu_cores": 5, "node_memory_bytes": 18 * GiB, "node_disk_bytes": 1000 * GiB}

#: (counter, change): each counter too high and too low, one host each.
DRIFTS = [
    ("node_count", +1),
    ("node_count", -2),
    ("node_cpu_cores", +3),
    ("node_cpu_cores", -1),
    ("node_memory_bytes", +1),
    ("node_memory_bytes", -4 * GiB),
    ("node_disk_bytes", +7 * GiB),
    ("node_disk_bytes", -1000 * GiB),
]


def drifted_fleet():
    """h00..h07 drifted as DRIFTS says, h08 and h09 clean, `empty` with counters but no nodes.
    Returns the exact findings expected, as (host, field, recorded, expected)."""
    hosts = fleet(10)
    expected = set()
    for host, (field, change) in zip(hosts, DRIFTS, strict=False):
        set_counter(host, field, change)
        expected.add((host.name, field, TRUTH[field] + change, TRUTH[field]))
    empty = HostFactory(name="empty")
    sql("UPDATE hosts_host SET node_count = 3, node_cpu_cores = 6, node_disk_bytes = 9 WHERE id = %s", empty.pk)
    expected |= {("empty", "node_count", 3, 0), ("empty", "node_cpu_cores", 6, 0), ("empty", "node_disk_bytes", 9, 0)}
    return expected


DEFAULTS = {"rpc": "off", "sync": "snap"}


def drifted_nodes():
    """Nodes of h00..h03 drifted in every way a node can be; h04 clean. Returns the exact
    findings expected as (node, field, recorded, expected)."""
    fleet(5)
    # Off its image: the allocation (and, consistently, the host's counters) rewritten by hand.
    sql("UPDATE nodes_node SET cpu_cores = 7, disk_bytes = 1 WHERE name = 'h00-a'")
    sql("UPDATE hosts_host SET node_cpu_cores = 10, node_disk_bytes = %s WHERE name = 'h00'", 500 * GiB + 1)
    # The config rewritten: rpc back to its default, so 1 core and 2 GiB too many are recorded.
    set_config(node("h00-b"), '{"rpc": "off", "sync": "snap"}')
    set_config(node("h01-a"), None)  # SQL NULL on a default node: only the config is wrong
    set_config(node("h01-b"), None)  # SQL NULL on an rpc node: the allocation is wrong too
    set_config(node("h02-a"), '["rpc", "on"]')  # a JSON list
    set_config(node("h02-b"), "null")  # JSON null
    set_config(node("h03-a"), '{"rpc": true, "sync": "full", "extra": 1}')  # non-string values
    return {
        ("h00-a", "cpu_cores", 7, 2),
        ("h00-a", "disk_bytes", 1, 500 * GiB),
        ("h00-b", "cpu_cores", 3, 2),
        ("h00-b", "memory_bytes", 10 * GiB, 8 * GiB),
        ("h01-a", CONFIG_FIELD, canonical(None), canonical(DEFAULTS)),
        ("h01-b", CONFIG_FIELD, canonical(None), canonical(DEFAULTS)),
        ("h01-b", "cpu_cores", 3, 2),
        ("h01-b", "memory_bytes", 10 * GiB, 8 * GiB),
        ("h02-a", CONFIG_FIELD, canonical(["rpc", "on"]), canonical(DEFAULTS)),
        ("h02-b", CONFIG_FIELD, canonical(None), canonical(DEFAULTS)),
        ("h02-b", "cpu_cores", 3, 2),
        ("h02-b", "memory_bytes", 10 * GiB, 8 * GiB),
        (
            "h03-a",
            CONFIG_FIELD,
            canonical({"rpc": True, "sync": "full", "extra": 1}),
            canonical({"rpc": "off", "sync": "full"}),
        ),
        ("h03-a", "cpu_cores", 2, 4),
        ("h03-a", "memory_bytes", 8 * GiB, 16 * GiB),
        ("h03-a", "disk_bytes", 500 * GiB, 500 * GiB + TiB),
    }
