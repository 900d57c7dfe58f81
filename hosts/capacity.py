"""The capacity model of §11, defined once: what a host can give (allocatable), whether a change
fits it, what it lacks (shortfalls), what it is over, and a placement's score.

Allocatable, per resource, is `floor((X - reserved_X) * X_allocation_ratio)`, 0 when
`reserved_X >= X`, at most 2**63-1. It is ONE SQL expression (allocatable_expression), stored
by the database as a generated column of the host (`allocatable_<resource>`), so PostgreSQL,
SQLite, the services, the audit's SQL, the admin's filters and every Python reader see the same
integer. The expression is exact integer arithmetic on both databases (no float, no numeric
rounding): the ratio is read as whole ten-thousandths `k` (it has 4 decimal places), and
`(X - r) * k / 10000` is computed as `q*k + (m*k)/10000` with `q, m = divmod(X - r, 10000)`, each
step checked against 2**63-1 before it is taken, so the bigint never overflows.

Everything else here is pure: it reads attributes of any host-like object (a Host, a plan's
copy of one) and decides with Python integers and Fractions.
"""

from collections.abc import Mapping
from fractions import Fraction
from typing import Protocol

from django.db.models import BigIntegerField, Case, F, Q, Value, When
from django.db.models.functions import Cast, Round
from django.db.models.lookups import GreaterThan, LessThanOrEqual

from config.errors import HostUnavailable
from config.units import BIGINT_MAX, RESOURCE_LABELS, RESOURCES, human_amount

#: The ratio's 4 decimal places: it is read as a whole number of ten-thousandths.
RATIO_SCALE = 10_000

#: resource -> the host's counter of it, its reserve, its ratio and its allocatable column.
COUNTER = {"cpu_cores": "node_cpu_cores", "memory_bytes": "node_memory_bytes", "disk_bytes": "node_disk_bytes"}
RESERVED = {name: f"reserved_{name}" for name in RESOURCES}
RATIO = {
    "cpu_cores": "cpu_allocation_ratio",
    "memory_bytes": "memory_allocation_ratio",
    "disk_bytes": "disk_allocation_ratio",
}
ALLOCATABLE = {name: f"allocatable_{name}" for name in RESOURCES}

#: The fourth dimension of a fit: node slots (`max_nodes`, NULL = no limit).
NODE_COUNT = "node_count"
#: Every dimension a fit or a shortfall names, in the order reports list them.
DIMENSIONS = (*RESOURCES, NODE_COUNT)


def allocatable_expression(resource: str) -> Case:
    """The SQL of `allocatable_<resource>` (the host's generated column): exact, clamped at
    2**63-1, 0 when the reserve takes it all. Integer division of non-negative bigints is floor
    on both PostgreSQL and SQLite."""
    size, reserved = F(resource), F(RESERVED[resource])
    room = size - reserved
    k = Cast(Round(F(RATIO[resource]) * Value(RATIO_SCALE)), BigIntegerField())
    whole = room / Value(RATIO_SCALE)
    part = room - whole * Value(RATIO_SCALE)
    part_scaled = part * k / Value(RATIO_SCALE)  # < k <= 10**7: never near the limit
    limit = Value(BIGINT_MAX)
    return Case(
        When(LessThanOrEqual(size, reserved), then=Value(0)),
        When(LessThanOrEqual(k, Value(0)), then=Value(0)),  # refused by the CHECK; never divides by 0
        When(GreaterThan(whole, limit / k), then=limit),
        When(GreaterThan(whole * k, limit - part_scaled), then=limit),
        default=whole * k + part_scaled,
        output_field=BigIntegerField(),
    )


class HostLike(Protocol):
    """What the functions here read of a host (a Host row, or a plan's running copy of one)."""

    name: str
    node_count: int
    max_nodes: int | None


def used(host, resource: str) -> int:
    return getattr(host, COUNTER[resource])


def allocatable(host, resource: str) -> int:
    return getattr(host, ALLOCATABLE[resource])


def free(host, resource: str) -> int:
    """allocatable - used: below 0 on an over-allocated host (what `free_*` shows)."""
    return allocatable(host, resource) - used(host, resource)


def free_slots(host) -> int | None:
    """max_nodes - node_count (may be below 0), None without a slot limit."""
    return None if host.max_nodes is None else host.max_nodes - host.node_count


def fits(host, delta: Mapping[str, int], node_count_delta: int = 0) -> dict[str, bool]:
    """THE fit rule (§2 reading allocatable, §11): per dimension, whether the change fits. Only
    a dimension that grows must fit (`used + delta <= allocatable`, `node_count + delta <=
    max_nodes`); one that shrinks or stays is always allowed, even on a host already over."""
    result = {
        name: delta.get(name, 0) <= 0 or used(host, name) + delta.get(name, 0) <= allocatable(host, name)
        for name in RESOURCES
    }
    result[NODE_COUNT] = (
        node_count_delta <= 0 or host.max_nodes is None or host.node_count + node_count_delta <= host.max_nodes
    )
    return result


def shortfalls(host, delta: Mapping[str, int], node_count_delta: int = 0) -> list[dict]:
    """`[{resource, requested, available}]` for each dimension the change does not fit, where
    `available` is allocatable - used (free slots for node_count), at least 0."""
    verdict = fits(host, delta, node_count_delta)
    rows = [
        {"resource": name, "requested": delta.get(name, 0), "available": max(free(host, name), 0)}
        for name in RESOURCES
        if not verdict[name]
    ]
    if not verdict[NODE_COUNT]:
        rows.append({"resource": NODE_COUNT, "requested": node_count_delta, "available": max(free_slots(host), 0)})
    return rows


def shortfall_text(host_name: str, shortfall: dict) -> str:
    """One shortfall as a person reads it."""
    name = shortfall["resource"]
    if name == NODE_COUNT:
        return f"no free node slot on {host_name} ({shortfall['available']} free)"
    return (
        f"not enough {RESOURCE_LABELS[name]} on {host_name} (needs "
        f"{human_amount(name, shortfall['requested'])}, {human_amount(name, shortfall['available'])} free)"
    )


def over_allocated(host) -> list[str]:
    """The dimensions a host is over: used above allocatable, node_count above max_nodes."""
    over = [name for name in RESOURCES if used(host, name) > allocatable(host, name)]
    if host.max_nodes is not None and host.node_count > host.max_nodes:
        over.append(NODE_COUNT)
    return over


def refuse_unavailable(host) -> None:
    """A create on a `draining` host is refused, named or forced (§11): `host_unavailable`."""
    if host.scheduling == "draining":
        raise HostUnavailable(
            f"Host {host.name} is draining: it takes no new nodes (its nodes stay, and may be upgraded "
            "and deleted). Choose another host, or set it to automatic or manual.",
            host=host.name,
            scheduling=host.scheduling,
        )


def score(host, requested: Mapping[str, int]) -> Fraction:
    """§11's score, exact: the mean over cpu, memory and disk with allocatable above 0 of
    `(used + requested) / allocatable` (0 when there is none)."""
    shares = [
        Fraction(used(host, name) + requested.get(name, 0), allocatable(host, name))
        for name in RESOURCES
        if allocatable(host, name) > 0
    ]
    return sum(shares, Fraction(0)) / len(shares) if shares else Fraction(0)


#: The scale of score_key: 10**120 (see hosts.placement: distinct scores stay distinct).
SCORE_KEY_SCALE = 10**120


def score_key(host, requested: Mapping[str, int]) -> int:
    """`score` as an integer that orders hosts exactly as the score does (floor(score *
    10**120): two different scores of 64-bit amounts differ by more than 10**-116), computed
    with integer products alone — a Fraction's gcds made a plan over 10,000 hosts take seconds.
    The SQL ranking of hosts.placement computes the same integer."""
    terms, sizes = [], []
    for name in RESOURCES:
        size = allocatable(host, name)
        if size > 0:
            terms.append(used(host, name) + requested.get(name, 0))
            sizes.append(size)
    if not sizes:
        return 0
    numerator, denominator = 0, len(sizes)
    for index, term in enumerate(terms):
        product = term
        for other, size in enumerate(sizes):
            if other != index:
                product *= size
        numerator += product
    for size in sizes:
        denominator *= size
    return numerator * SCORE_KEY_SCALE // denominator


# ---------------------------------------------------------------------------------------------
# The same rules as SQL conditions on host rows


def fits_q(requested: Mapping[str, int], node_count_delta: int = 1) -> Q:
    """Hosts the requirement fits (the rule of `fits`, in SQL). Written as `requested <=
    allocatable - used`, which cannot overflow a bigint (both sides are within 0..2**63-1)."""
    condition = Q()
    for name in RESOURCES:
        if requested.get(name, 0) > 0:
            condition &= Q(LessThanOrEqual(Value(requested[name]), F(ALLOCATABLE[name]) - F(COUNTER[name])))
    if node_count_delta > 0:
        slots = LessThanOrEqual(Value(node_count_delta), F("max_nodes") - F(NODE_COUNT))
        condition &= Q(max_nodes__isnull=True) | Q(slots)
    return condition


def over_allocated_q(used_of: Mapping[str, str] | None = None) -> Q:
    """Hosts over allocatable in some resource or past max_nodes. `used_of` maps each dimension
    to the expression holding what is used (default: the host's counters; the audit passes the
    sums of the nodes)."""
    used_of = used_of or {**COUNTER, NODE_COUNT: NODE_COUNT}
    return Q(
        *(Q(**{f"{used_of[name]}__gt": F(ALLOCATABLE[name])}) for name in RESOURCES),
        Q(max_nodes__isnull=False, **{f"{used_of[NODE_COUNT]}__gt": F("max_nodes")}),
        _connector=Q.OR,
    )
