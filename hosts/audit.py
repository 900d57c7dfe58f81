"""Selectors that audit hosts: each host's four counters against the COUNT and SUMs of its nodes.

`hosts` never imports `nodes`: the truth is read through the reverse relation `Host.nodes`.
Everything here is set-based: one query whatever the number of hosts, streamed with .iterator().
"""

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.db.models import (
    BigIntegerField,
    BooleanField,
    Count,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce

from config.errors import NotFound
from config.units import RESOURCES
from hosts.capacity import ALLOCATABLE, NODE_COUNT, over_allocated_q
from hosts.models import COUNTER_FIELDS, COUNTER_OF_RESOURCE, Host

#: counter field -> the annotation holding what it should be (the COUNT or SUM of its nodes).
EXPECTED = {counter: f"expected_{counter}" for counter in COUNTER_FIELDS}

#: counter field -> the node field it sums (None: node_count counts the nodes).
_SUMMED = {"node_count": None, **{counter: resource for resource, counter in COUNTER_OF_RESOURCE.items()}}

CHUNK_SIZE = 2000


@dataclass(frozen=True)
class HostFinding:
    """A counter that disagrees with the host's nodes."""

    host_id: uuid.UUID
    host_name: str
    field: str
    recorded: int
    expected: int


@dataclass(frozen=True)
class CapacityWarning:
    """A resource whose nodes, summed, exceed the host's allocatable (§11), or whose nodes
    outnumber its max_nodes (resource `node_count`): a warning, not drift. `capacity` is the
    allocatable (or max_nodes) it exceeds."""

    host_id: uuid.UUID
    host_name: str
    resource: str
    allocated: int
    capacity: int


def _drift() -> Q:
    return Q(*(~Q(**{counter: F(expected)}) for counter, expected in EXPECTED.items()), _connector=Q.OR)


def _over_capacity() -> Q:
    """Over allocatable (§11) or past max_nodes, by what the nodes sum to (hosts.capacity)."""
    return over_allocated_q(
        {
            **{name: EXPECTED[counter] for name, counter in COUNTER_OF_RESOURCE.items()},
            NODE_COUNT: EXPECTED["node_count"],
        }
    )


def hosts_with_expected(queryset: QuerySet | None = None) -> QuerySet:
    """Hosts annotated with `expected_<counter>` for each of the four counters (correlated
    subqueries over the host's nodes, 0 for a host without nodes) and `has_drift`, in the
    queryset's one query. Suits paginated lists: only the rows fetched are computed."""
    queryset = Host.objects.all() if queryset is None else queryset
    node_model = Host._meta.get_field("nodes").related_model

    def total(aggregate):
        rows = node_model.objects.filter(host=OuterRef("pk")).order_by().values("host").annotate(total=aggregate)
        return Coalesce(Subquery(rows.values("total")), Value(0), output_field=BigIntegerField())

    annotated = queryset.annotate(
        **{
            EXPECTED[counter]: total(Count("pk") if resource is None else Sum(resource))
            for counter, resource in _SUMMED.items()
        }
    )
    return annotated.annotate(has_drift=ExpressionWrapper(_drift(), output_field=BooleanField()))


def _hosts_with_totals(host_ids: Iterable | None) -> QuerySet:
    """Hosts with the COUNT/SUMs of their nodes: one LEFT JOIN ... GROUP BY over the fleet."""
    hosts = Host.objects.all() if host_ids is None else Host.objects.filter(pk__in=list(host_ids))
    return hosts.annotate(
        **{
            EXPECTED[counter]: Count("nodes") if resource is None else Coalesce(Sum(f"nodes__{resource}"), 0)
            for counter, resource in _SUMMED.items()
        }
    )


def host_truths(*, host_ids: Iterable) -> dict[uuid.UUID, dict[str, int]]:
    """What each given host's counters should be, from its nodes, in one grouped query."""
    rows = _hosts_with_totals(host_ids).order_by().values_list("pk", *EXPECTED.values())
    return {pk: dict(zip(COUNTER_FIELDS, totals, strict=True)) for pk, *totals in rows}


def host_drift_scan(*, host_ids: Iterable | None = None) -> Iterator[tuple[uuid.UUID, bool]]:
    """(pk, whether its counters disagree with its nodes) of every (or every given) host: one
    grouped query, streamed."""
    rows = (
        _hosts_with_totals(host_ids)
        .annotate(drifted=ExpressionWrapper(_drift(), output_field=BooleanField()))
        .order_by()
        .values_list("pk", "drifted")
    )
    return rows.iterator(chunk_size=CHUNK_SIZE)


def host_audit(*, host_ids: Iterable | None = None, capacity: bool = True) -> Iterator[HostFinding | CapacityWarning]:
    """Every counter that disagrees with its host's nodes (HostFinding) and, with `capacity`,
    every resource whose nodes exceed the host's capacity (CapacityWarning), host by host in
    name order. One grouped query over all (or the given) hosts, streamed."""
    condition = _drift() | _over_capacity() if capacity else _drift()
    rows = (
        _hosts_with_totals(host_ids)
        .filter(condition)
        .order_by("name")
        .values_list("pk", "name", *COUNTER_FIELDS, *EXPECTED.values(), *ALLOCATABLE.values(), "max_nodes")
    )
    for pk, name, *values in rows.iterator(chunk_size=CHUNK_SIZE):
        recorded = dict(zip(COUNTER_FIELDS, values[:4], strict=True))
        expected = dict(zip(COUNTER_FIELDS, values[4:8], strict=True))
        for counter in COUNTER_FIELDS:
            if recorded[counter] != expected[counter]:
                yield HostFinding(pk, name, counter, recorded[counter], expected[counter])
        if capacity:
            for resource, amount in zip(RESOURCES, values[8:11], strict=True):
                allocated = expected[COUNTER_OF_RESOURCE[resource]]
                if allocated > amount:
                    yield CapacityWarning(pk, name, resource, allocated, amount)
            max_nodes = values[11]
            if max_nodes is not None and expected["node_count"] > max_nodes:
                yield CapacityWarning(pk, name, NODE_COUNT, expected["node_count"], max_nodes)


def host_counter_findings(*, host_ids: Iterable | None = None) -> Iterator[HostFinding]:
    """Every counter that disagrees with the COUNT/SUM of its host's nodes (one grouped query)."""
    return host_audit(host_ids=host_ids, capacity=False)


def host_capacity_warnings(*, host_ids: Iterable | None = None) -> Iterator[CapacityWarning]:
    """Every resource whose nodes, summed, exceed their host's capacity (one grouped query)."""
    return (item for item in host_audit(host_ids=host_ids) if isinstance(item, CapacityWarning))


def hosts_by_id_or_name(refs: Iterable[str]) -> list[Host]:
    """The hosts named by id or name, in the given order without repeats; `not_found` for the
    first reference that names nothing. One query."""
    refs = list(dict.fromkeys(refs))
    pks = {pk for pk in map(_as_uuid, refs) if pk}
    found = list(Host.objects.filter(Q(pk__in=pks) | Q(name__in=refs)))
    by_pk, by_name = {host.pk: host for host in found}, {host.name: host for host in found}
    hosts = {}
    for ref in refs:
        host = by_pk.get(_as_uuid(ref)) or by_name.get(ref)
        if host is None:
            raise NotFound(f"No host with id or name {ref!r}.")
        hosts.setdefault(host.pk, host)
    return list(hosts.values())


def _as_uuid(ref: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(ref))
    except ValueError:
        return None


def host_count(*, host_ids: Iterable | None = None) -> int:
    """How many hosts an audit or repair of `host_ids` (None: the fleet) checks."""
    return (Host.objects.all() if host_ids is None else Host.objects.filter(pk__in=list(host_ids))).count()
