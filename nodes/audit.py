"""Selectors that audit nodes: each node's recorded allocation against the required allocation of
its config on its image, computed by the same code as the upgrade's (nodes.resources).

Set-based and streamed, whatever the fleet size: one grouped query finds the distinct
(image, config, allocation) combinations — few, as nodes share images and configs — the
arithmetic runs once per combination, and one more query (only when some combination is wrong)
streams the nodes of the wrong combinations.
"""

import json
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.db import connection
from django.db.models import Q, TextField
from django.db.models.functions import Cast

from config.units import RESOURCES
from hosts.models import Host
from nodes.changes import image_spec
from nodes.models import Image, Node
from nodes.resources import ImageSpec, Resources, required_allocation, usable_config

CHUNK_SIZE = 2000
#: Wrong combinations looked up per query of the second pass (bounds the memory they take).
COMBINATIONS_PER_QUERY = 5000

#: The field of a finding about a corrupt config (the others are the three resources).
CONFIG_FIELD = "properties"


@dataclass(frozen=True)
class NodeFinding:
    """A node field that disagrees with what its config on its image requires: a resource
    (`recorded`/`expected` amounts) or, for a corrupt config, `properties` (the stored value and
    the config it is read as: its string values, the image's defaults for the rest)."""

    node_id: uuid.UUID
    node_name: str
    host_name: str
    field: str
    recorded: object
    expected: object


@dataclass(frozen=True)
class NodeVerdict:
    """What a node's config on its image requires, and how its stored config reads."""

    allocation: Resources
    config: dict[str, str]
    corrupt: bool
    warnings: list[str]


def node_count(*, host_ids: Iterable | None = None) -> int:
    """How many nodes an audit of `host_ids` (None: the fleet) checks."""
    return (Node.objects.all() if host_ids is None else Node.objects.filter(host_id__in=list(host_ids))).count()


def image_specs() -> dict[uuid.UUID, ImageSpec]:
    """Every image's spec, in two queries (images are few; nodes are many)."""
    return {image.pk: image_spec(image) for image in Image.objects.prefetch_related("properties")}


def node_verdict(spec: ImageSpec, properties: object) -> NodeVerdict:
    """The required allocation of a stored config on its image — the upgrade's arithmetic
    (usable_config, required_allocation) — and the config it is read as."""
    usable, warnings = usable_config(properties)
    config = {**spec.defaults(), **usable} if warnings else properties
    return NodeVerdict(required_allocation(spec, usable), config, bool(warnings), warnings)


def _findings(verdict: NodeVerdict, properties: object, recorded: Resources) -> list[tuple[str, object, object]]:
    """(field, recorded, expected) for each field of a node that disagrees with its verdict."""
    wrong = [(CONFIG_FIELD, properties, verdict.config)] if verdict.corrupt else []
    return wrong + [
        (name, amount, expected)
        for (name, amount), expected in zip(recorded.items(), verdict.allocation, strict=True)
        if amount != expected
    ]


_WRONG_NODES_SQL = """
SELECT n.id, n.name, h.name, wrong.position
FROM {node} n
JOIN {host} h ON h.id = n.host_id
JOIN unnest(%s::uuid[], %s::text[], %s::bigint[], %s::bigint[], %s::bigint[], %s::int[])
     AS wrong(image_id, config, cpu_cores, memory_bytes, disk_bytes, position)
  ON n.image_id = wrong.image_id
 AND n.cpu_cores = wrong.cpu_cores AND n.memory_bytes = wrong.memory_bytes AND n.disk_bytes = wrong.disk_bytes
 AND n.properties::text IS NOT DISTINCT FROM wrong.config
{scope}
ORDER BY h.name, n.name
"""


def _nodes_of(combinations: list[tuple], host_ids: list | None) -> Iterator[NodeFinding]:
    """Streams the findings of every node whose (image, config text, allocation) is one of the
    wrong combinations: (image_id, config_text, recorded, findings) each."""
    if connection.vendor != "postgresql":
        yield from _nodes_of_portable(combinations, host_ids)
        return
    sql = _WRONG_NODES_SQL.format(
        node=connection.ops.quote_name(Node._meta.db_table),
        host=connection.ops.quote_name(Host._meta.db_table),
        scope="WHERE n.host_id = ANY(%s::uuid[])" if host_ids is not None else "",
    )
    columns = [
        [combination[0] for combination in combinations],
        [combination[1] for combination in combinations],
        *([getattr(combination[2], name) for combination in combinations] for name in RESOURCES),
        list(range(len(combinations))),
    ]
    params = [*columns, host_ids] if host_ids is not None else columns
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(CHUNK_SIZE):
            for node_id, node_name, host_name, position in rows:
                for field, recorded, expected in combinations[position][3]:
                    yield NodeFinding(node_id, node_name, host_name, field, recorded, expected)


def _nodes_of_portable(combinations: list[tuple], host_ids: list | None) -> Iterator[NodeFinding]:
    """_nodes_of for the quick start's SQLite (no arrays): one ORM query with a condition per
    wrong combination; fine at the sizes SQLite serves here."""
    match = Q()
    for image_id, config_text, recorded, _ in combinations:
        match |= Q(image_id=image_id, config=config_text, **recorded.as_dict())
    nodes = Node.objects.annotate(config=Cast("properties", output_field=TextField())).filter(match)
    if host_ids is not None:
        nodes = nodes.filter(host_id__in=host_ids)
    position = {(c[0], c[1], c[2]): c[3] for c in combinations}
    for node in nodes.select_related("host").order_by("host__name", "name"):
        for field, recorded, expected in position[(node.image_id, node.config, Resources.of(node))]:
            yield NodeFinding(node.pk, node.name, node.host.name, field, recorded, expected)


def node_allocation_findings(*, host_ids: Iterable | None = None) -> Iterator[NodeFinding]:
    """Every node field that disagrees with the required allocation of its config on its image
    (and every corrupt config), for all nodes or those of the given hosts. Bounded memory: one
    grouped query streamed, then the wrong nodes streamed, COMBINATIONS_PER_QUERY at a time."""
    host_ids = None if host_ids is None else list(host_ids)
    specs = image_specs()
    nodes = Node.objects.all() if host_ids is None else Node.objects.filter(host_id__in=host_ids)
    combinations = (
        nodes.order_by()
        .annotate(config=Cast("properties", output_field=TextField()))
        .values_list("image_id", "config", *RESOURCES)
        .distinct()  # hashed in one pass; a GROUP BY with a count here sorts the nodes
    )
    wrong = []
    for image_id, config_text, *amounts in combinations.iterator(chunk_size=CHUNK_SIZE):
        properties = None if config_text is None else json.loads(config_text)
        recorded = Resources(*amounts)
        if image_id not in specs:  # an image first used since the specs were read
            specs = image_specs()
        findings = _findings(node_verdict(specs[image_id], properties), properties, recorded)
        if findings:
            wrong.append((image_id, config_text, recorded, findings))
        if len(wrong) >= COMBINATIONS_PER_QUERY:
            yield from _nodes_of(wrong, host_ids)
            wrong = []
    if wrong:
        yield from _nodes_of(wrong, host_ids)
