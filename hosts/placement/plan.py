"""§11 the plan (dry run) and headroom: where N nodes would go, and how many more of a
requirement fit; host rows only, nothing locked or written (hosts.placement.choose ranks the
same way)."""

import heapq
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction

from django.db.models import BigIntegerField, Case, Count, F, Q, Sum, Value, When
from django.db.models.functions import Greatest, Least

from config.errors import InvalidInput, NoHostAvailable
from config.units import RESOURCES
from hosts import capacity
from hosts.capacity import ALLOCATABLE, COUNTER, NODE_COUNT
from hosts.models import Host, Scheduling
from hosts.placement.choose import (
    Requirement,
    _protocol_counts,
    _region_q,
    exclusions,
    no_host_available,
    sort_key,
)

# ---------------------------------------------------------------------------------------------
# The plan (dry run) and headroom: host rows only, nothing locked or written

#: How many candidates and closest misses a plan lists.
PLAN_LISTED = 25


@dataclass
class HostRow:
    """A plan's running copy of a host: only what the fit and the score read."""

    id: object
    name: str
    region: str
    scheduling: str
    max_nodes: int | None
    node_count: int
    node_cpu_cores: int
    node_memory_bytes: int
    node_disk_bytes: int
    allocatable_cpu_cores: int
    allocatable_memory_bytes: int
    allocatable_disk_bytes: int
    same_protocol: int = 0


_ROW_FIELDS = [f.name for f in HostRow.__dataclass_fields__.values() if f.name != "same_protocol"]


@dataclass
class PlacementPlan:
    requested: dict[str, int]
    count: int
    placements: list[dict] = field(default_factory=list)  # {host_id, host_name, score (Fraction), free_after}
    hosts_considered: int = 0
    excluded: dict[str, int] = field(default_factory=dict)
    hosts: list[dict] = field(default_factory=list)
    error: NoHostAvailable | None = None

    @property
    def placed(self) -> int:
        return len(self.placements)


def _reasons(row: HostRow, requirement: Requirement, amounts) -> list[str]:
    reasons = []
    if row.scheduling != Scheduling.AUTOMATIC:
        reasons.append("scheduling")
    if requirement.region is not None and row.region != requirement.region:
        reasons.append("region")
    verdict = capacity.fits(row, amounts, 1)
    reasons.extend(name for name in (*RESOURCES, NODE_COUNT) if not verdict[name])
    return reasons


def _listed(row: HostRow, requirement, amounts) -> dict:
    reasons = _reasons(row, requirement, amounts)
    return {
        "host_id": row.id,
        "host_name": row.name,
        "fits": not reasons,
        "score": capacity.score(row, amounts),
        "reasons": reasons,
        "shortfalls": capacity.shortfalls(row, amounts, 1),
    }


def _miss_rank(row: HostRow, requirement, amounts) -> tuple:
    """Closest misses first: not dropped by scheduling or region, fewest reasons, smallest
    shortfall relative to allocatable (summed over what is short), then name."""
    reasons = _reasons(row, requirement, amounts)
    dropped = "scheduling" in reasons or "region" in reasons
    relative = sum(
        (
            Fraction(s["requested"] - s["available"], max(capacity.allocatable(row, s["resource"]), 1))
            if s["resource"] != NODE_COUNT
            else Fraction(s["requested"] - s["available"], max(row.max_nodes or 0, 1))
            for s in capacity.shortfalls(row, amounts, 1)
        ),
        Fraction(0),
    )
    return (dropped, len(reasons), relative, row.name)


def placement_plan(requirement: Requirement, count: int) -> PlacementPlan:
    """Where `count` nodes of the requirement would go, the n-th counting the n-1 before it
    (§11 Plan). Two statements over host rows (the exclusion counts and the rows), none over
    nodes unless spread_protocol asks for same-protocol counts (one grouped read of them)."""
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 1000:
        raise InvalidInput("count must be an integer from 1 to 1000.", errors={"count": ["From 1 to 1000."]})
    amounts = requirement.amounts()
    plan = PlacementPlan(requested=amounts, count=count)
    plan.hosts_considered, plan.excluded, _fitting = exclusions(requirement)
    rows = [HostRow(**values) for values in Host.objects.order_by().values(*_ROW_FIELDS).iterator(chunk_size=5000)]
    in_scope = [
        row
        for row in rows
        if row.scheduling == Scheduling.AUTOMATIC and (requirement.region is None or row.region == requirement.region)
    ]
    if requirement.spread_protocol:
        counts = _protocol_counts(requirement, [row.id for row in in_scope])
        for row in in_scope:
            row.same_protocol = counts.get(row.id, 0)
    fitting = [row for row in in_scope if all(capacity.fits(row, amounts, 1).values())]
    fitting_ids = {row.id for row in fitting}
    heap = [(sort_key(row, requirement, row.same_protocol, amounts), index) for index, row in enumerate(fitting)]
    # The listing is about the first node: the best candidates, then the closest misses.
    ranked = [fitting[index] for _key, index in heapq.nsmallest(PLAN_LISTED, heap)]
    misses = heapq.nsmallest(
        PLAN_LISTED,
        (row for row in rows if row.id not in fitting_ids),
        key=lambda row: _miss_rank(row, requirement, amounts),
    )
    plan.hosts = [_listed(row, requirement, amounts) for row in [*ranked, *misses]]
    heapq.heapify(heap)
    for _n in range(count):
        if not heap:
            short = dict(plan.excluded)
            for name in (*RESOURCES, NODE_COUNT):  # the candidates the earlier nodes filled
                short[name] += sum(1 for row in fitting if not capacity.fits(row, amounts, 1)[name])
            plan.error = no_host_available(
                hosts_considered=plan.hosts_considered, excluded=short, region=requirement.region
            )
            break
        _key, index = heapq.heappop(heap)
        row = fitting[index]
        value = capacity.score(row, amounts)
        for name in RESOURCES:
            setattr(row, COUNTER[name], capacity.used(row, name) + amounts[name])
        row.node_count += 1
        row.same_protocol += 1
        plan.placements.append(
            {
                "host_id": row.id,
                "host_name": row.name,
                "score": value,
                "free_after": {name: capacity.free(row, name) for name in RESOURCES},
                "free_slots_after": capacity.free_slots(row),
            }
        )
        if all(capacity.fits(row, amounts, 1).values()):
            heapq.heappush(heap, (sort_key(row, requirement, row.same_protocol, amounts), index))
    return plan


@dataclass(frozen=True)
class Headroom:
    requested: dict[str, int]
    nodes: int | None  # None: nothing bounds it
    hosts_with_room: int
    regions: list[dict]  # [{"region", "nodes"}], by region name


def headroom(requested: Mapping[str, int], *, region: str | None = None) -> Headroom:
    """How many more nodes of `requested` the automatic hosts take (§11 Headroom): per host the
    least over resources with a non-zero requirement of floor(free / requested), at most its
    free slots; summed per region. ONE grouped statement over host rows, no node read."""
    amounts = {name: int(requested.get(name, 0)) for name in RESOURCES}
    bounds = [
        Greatest(F(ALLOCATABLE[name]) - F(COUNTER[name]), Value(0)) / Value(amounts[name])
        for name in RESOURCES
        if amounts[name] > 0
    ]
    slots = Greatest(F("max_nodes") - F(NODE_COUNT), Value(0))
    whole = BigIntegerField()
    if bounds:
        by_resources = bounds[0] if len(bounds) == 1 else Least(*bounds)
        per_host = Case(
            When(max_nodes__isnull=True, then=by_resources), default=Least(by_resources, slots), output_field=whole
        )
    else:
        per_host = Case(When(max_nodes__isnull=True, then=Value(None)), default=slots, output_field=whole)
    hosts = Host.objects.filter(Q(scheduling=Scheduling.AUTOMATIC) & _region_q(region)).annotate(room=per_host)
    rows = (
        hosts.order_by("region")
        .values("region")
        .annotate(
            nodes=Sum("room"),
            unbounded=Count("pk", filter=Q(room__isnull=True)),
            with_room=Count("pk", filter=Q(room__isnull=True) | Q(room__gt=0)),
        )
    )
    regions, total, with_room, unbounded = [], 0, 0, False
    for row in rows:
        nodes = None if row["unbounded"] else int(row["nodes"] or 0)
        regions.append({"region": row["region"], "nodes": nodes})
        unbounded = unbounded or nodes is None
        total += nodes or 0
        with_room += row["with_room"]
    return Headroom(requested=amounts, nodes=None if unbounded else total, hosts_with_room=with_room, regions=regions)
