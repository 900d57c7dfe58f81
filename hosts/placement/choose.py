"""§11 choosing and claiming a host for a requirement, race-free, and the refusal that says
why not. Knows nothing of nodes: it takes a requirement (amounts, strategy, region, protocol)
and returns a locked host.

Choosing and claiming, on PostgreSQL (`place`):

1. ONE statement, sent with a SAVEPOINT in the same round trip, picks and locks the host:
   the best eligible hosts are ranked in SQL over host rows alone (the partial index
   `host_automatic_region` serves the scheduling and region filter; no node is read, except
   with `spread_protocol`), and the first of the best few that no other transaction holds
   is locked (FOR NO KEY UPDATE SKIP LOCKED), and ONLY it: the locking level filters on the
   primary key alone, so no other row is ever locked on the way. The fit is re-read from the
   row as locked (its latest committed version).
2. It fits (the common case): the caller writes its node on it, one host lock held.
3. It no longer fits (another change committed since the ranking read it): ROLLBACK TO the
   savepoint releases it, and the ranking runs again, seeing that change.
4. Every one of the best few is locked at this instant: wait for the best (lock by primary key,
   bounded by the lock timeout), re-check as in 2-3. A placement is therefore never refused
   because hosts with room were merely locked for a moment: it is refused only when a ranking
   finds no eligible host with room, and the refusal's counts come from that same moment.

At most one host lock is held at any time; images are leaf locks, read (FOR KEY SHARE) by the
caller before it calls here (hosts/locks.py, "Lock order").

On SQLite (the quick start) writers are serialised by the database's write lock; the ranking
runs in Python over the eligible rows with the same score (hosts.capacity.score).

The score in SQL is exact: §11's mean of `(used + requested) / allocatable` is the fraction
N / D with N, D integers below 2**200; `div(N * 10**120, D)` keeps every distinct value
distinct (two such fractions differ by more than 10**-116) and equal ones equal, so SQL orders
hosts exactly as hosts.capacity.score does (tests/hosts/test_placement_property.py).
"""

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from django.db import connection
from django.db.models import Count, Q

from config.errors import Busy, InvalidInput, NoHostAvailable
from config.http.metrics import LOCK_WAIT_SECONDS, timed
from config.units import RESOURCES
from hosts import capacity
from hosts.capacity import ALLOCATABLE, COUNTER, NODE_COUNT
from hosts.models import Host, Scheduling

logger = logging.getLogger("hosts.placement")

STRATEGIES = ("binpack", "spread")
#: The reasons a host is not eligible, in the order a refusal counts them (§11).
REASONS = ("scheduling", "region", *RESOURCES, NODE_COUNT)
#: How many of the best candidates one statement tries to lock without waiting.
CANDIDATES = 8
#: Rankings one placement runs before it gives up (each follows a change another committed).
ATTEMPTS = 50
#: The score's scale in SQL: 10**120 (see the module's docstring).
_KEY_SCALE = "1e120"


@dataclass(frozen=True)
class Requirement:
    """What a placement asks: the node's required allocation, one node slot, and where."""

    requested: Mapping[str, int]
    strategy: str = "binpack"
    region: str | None = None  # None: any region; "": hosts without a region
    spread_protocol: bool = False
    protocol: str = ""

    def amounts(self) -> dict[str, int]:
        return {name: int(self.requested.get(name, 0)) for name in RESOURCES}


def requirement_check(*, requested: Mapping[str, int], placement: Mapping | None, protocol: str = "") -> Requirement:
    """A placement's options checked (strict types, `invalid` per field) into a Requirement."""
    placement = {} if placement is None else placement
    errors = {}
    if not isinstance(placement, Mapping):
        raise InvalidInput("The placement must be an object.", errors={"placement": ["Must be an object."]})
    unknown = sorted(set(placement) - {"strategy", "region", "spread_protocol"})
    if unknown:
        errors["placement"] = [f"Unknown field: {key}." for key in unknown]
    strategy = placement.get("strategy", "binpack")
    if strategy not in STRATEGIES:
        errors["placement.strategy"] = [f"One of {', '.join(STRATEGIES)}."]
    region = placement.get("region")
    if region is not None and (not isinstance(region, str) or len(region) > Host._meta.get_field("region").max_length):
        errors["placement.region"] = ["A region name (a string), or null for any region."]
    spread_protocol = placement.get("spread_protocol", False)
    if not isinstance(spread_protocol, bool):
        errors["placement.spread_protocol"] = ["Must be true or false."]
    if errors:
        raise InvalidInput("The placement options are invalid.", errors=errors)
    return Requirement(
        requested=dict(requested), strategy=strategy, region=region, spread_protocol=spread_protocol, protocol=protocol
    )


# ---------------------------------------------------------------------------------------------
# The refusal


def no_host_detail(*, hosts_considered: int, fitting: int = 0, excluded: Mapping[str, int], region: str | None) -> str:
    """THE one sentence of a refusal (API, admin and CLI show it as it is), e.g. "No host can
    take this node: 0 of 12 hosts fit (5 short of memory_bytes, 3 short of cpu_cores, 4 not
    automatic, 2 outside region eu-1)."."""
    short = sorted(
        ((count, name) for name, count in excluded.items() if name in (*RESOURCES, NODE_COUNT) and count),
        key=lambda item: (-item[0], REASONS.index(item[1])),
    )
    parts = [f"{count} short of {name}" for count, name in short]
    if excluded.get("scheduling"):
        parts.append(f"{excluded['scheduling']} not automatic")
    if excluded.get("region"):
        parts.append(f"{excluded['region']} outside region {region if region else '(none)'}")
    reasons = f" ({', '.join(parts)})" if parts else ""
    noun = "host" if hosts_considered == 1 else "hosts"
    return f"No host can take this node: {fitting} of {hosts_considered} {noun} fit{reasons}."


def no_host_available(*, hosts_considered: int, excluded: Mapping[str, int], region: str | None) -> NoHostAvailable:
    excluded = {reason: int(excluded.get(reason, 0)) for reason in REASONS}
    detail = no_host_detail(hosts_considered=hosts_considered, excluded=excluded, region=region)
    return NoHostAvailable(detail, hosts_considered=hosts_considered, excluded=excluded)


def _region_q(region: str | None) -> Q:
    return Q() if region is None else Q(region=region)


def exclusions(requirement: Requirement) -> tuple[int, dict[str, int], int]:
    """(hosts considered, excluded: reason -> hosts, hosts that fit) in ONE aggregate statement
    over host rows. A host counts under the first filter that drops it (scheduling, region,
    then resources); one short of several resources counts under each."""
    amounts = requirement.amounts()
    automatic = Q(scheduling=Scheduling.AUTOMATIC)
    in_scope = automatic & _region_q(requirement.region)
    filters = {"scheduling": ~automatic}
    if requirement.region is not None:
        filters["region"] = automatic & ~_region_q(requirement.region)
    for name in RESOURCES:
        if amounts[name] > 0:
            filters[name] = in_scope & ~capacity.fits_q({name: amounts[name]}, 0)
    filters[NODE_COUNT] = in_scope & ~capacity.fits_q({}, 1)
    counted = Host.objects.aggregate(
        total=Count("pk"),
        fitting=Count("pk", filter=in_scope & capacity.fits_q(amounts, 1)),
        **{f"x_{reason}": Count("pk", filter=condition) for reason, condition in filters.items()},
    )
    excluded = {reason: counted.get(f"x_{reason}", 0) for reason in REASONS}
    return counted["total"], excluded, counted["fitting"]


# ---------------------------------------------------------------------------------------------
# Choosing and claiming


def place(requirement: Requirement) -> Host:
    """The host a node of `requirement` goes on, locked (FOR NO KEY UPDATE) in the caller's
    transaction with the fit re-checked on its locked counters; `no_host_available` when no
    eligible host has room. Call inside transaction.atomic(), after reading the image."""
    if connection.vendor != "postgresql":
        return _place_in_python(requirement)
    amounts = requirement.amounts()
    with timed(LOCK_WAIT_SECONDS):
        for _attempt in range(ATTEMPTS):
            host, ranked = _claim(requirement, amounts, wait=False)
            if host is None and ranked:  # the best few are all locked this instant: wait for the best
                host, ranked = _claim(requirement, amounts, wait=True)
            if host is not None:
                return host
            if not ranked:
                considered, excluded, fitting = exclusions(requirement)
                if fitting == 0:
                    raise no_host_available(hosts_considered=considered, excluded=excluded, region=requirement.region)
                # A host gained room between the ranking and the count (a delete): rank again.
    raise Busy("Hosts kept changing while a placement chose one; try again.")


_HOST_FIELDS = list(Host._meta.concrete_fields)


def _column(alias: str, name: str) -> str:
    return f"{alias}.{connection.ops.quote_name(Host._meta.get_field(name).column)}"


def _fits_sql(alias: str, amounts: Mapping[str, int]) -> tuple[str, list]:
    """The fit of hosts.capacity.fits in SQL on `alias` (overflow-safe: requested <= allocatable - used)."""
    terms, params = [], []
    for name in RESOURCES:
        if amounts[name] > 0:
            terms.append(f"%s <= {_column(alias, ALLOCATABLE[name])} - {_column(alias, COUNTER[name])}")
            params.append(amounts[name])
    max_nodes, count = _column(alias, "max_nodes"), _column(alias, NODE_COUNT)
    terms.append(f"({max_nodes} IS NULL OR 1 <= {max_nodes} - {count})")
    return " AND ".join(terms), params


def _key_sql(alias: str, amounts: Mapping[str, int]) -> tuple[str, list]:
    """§11's score as an exact integer-valued numeric (see the module's docstring)."""
    shares, params = [], []
    for name in RESOURCES:
        allocatable, used = _column(alias, ALLOCATABLE[name]), _column(alias, COUNTER[name])
        shares.append(
            (
                f"(CASE WHEN {allocatable} > 0 THEN {used}::numeric + %s ELSE 0 END)",
                f"(CASE WHEN {allocatable} > 0 THEN {allocatable}::numeric ELSE 1 END)",
                f"(CASE WHEN {allocatable} > 0 THEN 1 ELSE 0 END)",
            )
        )
        params.append(amounts[name])
    (t1, a1, c1), (t2, a2, c2), (t3, a3, c3) = shares
    count = f"({c1} + {c2} + {c3})"
    numerator = f"({t1} * {a2} * {a3} + {t2} * {a1} * {a3} + {t3} * {a1} * {a2})"
    key = f"(CASE WHEN {count} = 0 THEN 0 ELSE div({numerator} * {_KEY_SCALE}, {count} * {a1} * {a2} * {a3}) END)"
    return key, params


def _protocol_count_sql(alias: str) -> str:
    """How many nodes of the protocol a host holds: an index scan of that host's nodes (by
    host_id), bounded by the host's node count — asked only with spread_protocol."""
    node = Host._meta.get_field("nodes").related_model
    image = node._meta.get_field("image").related_model
    return (
        f"(SELECT count(*) FROM {node._meta.db_table} pn JOIN {image._meta.db_table} pi ON pi.id = pn.image_id"
        f" WHERE pn.host_id = {alias}.id AND pi.protocol = %s)"
    )


def _order_sql(alias: str, requirement: Requirement, amounts) -> tuple[str, list]:
    key, params = _key_sql(alias, amounts)
    direction = "DESC" if requirement.strategy == "binpack" else "ASC"
    order = f"{key} {direction}, {_column(alias, 'name')}"
    if requirement.spread_protocol:
        order = f"{_protocol_count_sql(alias)}, {order}"
        params = [requirement.protocol, *params]
    return order, params


def _ranked_sql(requirement: Requirement, amounts, limit: int) -> tuple[str, list]:
    """The ids of the best `limit` eligible hosts, in order (no lock)."""
    fits, fit_params = _fits_sql("c", amounts)
    order, order_params = _order_sql("c", requirement, amounts)
    where = [f"{_column('c', 'scheduling')} = 'automatic'", fits]
    params = list(fit_params)
    if requirement.region is not None:
        where.insert(1, f"{_column('c', 'region')} = %s")
        params.insert(0, requirement.region)
    sql = f"SELECT c.id FROM {Host._meta.db_table} c WHERE {' AND '.join(where)} ORDER BY {order} LIMIT {int(limit)}"
    return sql, params + order_params


def _claim(requirement: Requirement, amounts, *, wait: bool) -> tuple[Host | None, bool]:
    """One statement (after a SAVEPOINT, same round trip): rank, lock one host, read its fit.
    Returns (the locked host that fits, or None; whether the ranking found any candidate)."""
    ranked, ranked_params = _ranked_sql(requirement, amounts, 1 if wait else CANDIDATES)
    fits, fit_params = _fits_sql("h", amounts)
    columns = ", ".join(_column("h", f.name) for f in _HOST_FIELDS)
    if wait:
        sql = (
            f"SELECT {columns}, ({fits}) AS fits FROM {Host._meta.db_table} h"
            f" WHERE h.id = ({ranked}) FOR NO KEY UPDATE OF h"
        )
        params = [*fit_params, *ranked_params]
    else:
        order, order_params = _order_sql("h", requirement, amounts)
        # The locking level filters on the primary key alone: a row it locks is the row it
        # returns (a re-check failing after a lock would leave that lock held), and SKIP LOCKED
        # moves past the candidates other transactions hold.
        sql = (
            f"SELECT {columns}, ({fits}) AS fits FROM {Host._meta.db_table} h"
            f" WHERE h.id = ANY(ARRAY({ranked})) ORDER BY {order} LIMIT 1 FOR NO KEY UPDATE OF h SKIP LOCKED"
        )
        params = [*fit_params, *ranked_params, *order_params]
    with connection.cursor() as cursor:
        cursor.execute(f"SAVEPOINT nf_placement; {sql}", params)
        cursor.cursor.nextset()
        row = cursor.fetchone()
        if row is None:
            if wait:
                return None, False
            # Nothing locked: were there candidates at all (all locked) or none?
            cursor.execute(f"SELECT EXISTS ({ranked})", ranked_params)
            return None, bool(cursor.fetchone()[0])
        host = _host_from_row(row[: len(_HOST_FIELDS)])
        if row[len(_HOST_FIELDS)]:
            return host, True
        # Changed since the ranking read it: release it and rank again.
        cursor.execute("ROLLBACK TO SAVEPOINT nf_placement")
        return None, True


def _host_from_row(values) -> Host:
    """A Host from a raw row of _HOST_FIELDS, through Django's own converters (a UUID, a Decimal)."""
    converted = []
    for field_, value in zip(_HOST_FIELDS, values, strict=True):
        column = field_.get_col(Host._meta.db_table)
        for converter in connection.ops.get_db_converters(column) + field_.get_db_converters(connection):
            value = converter(value, column, connection)
        converted.append(value)
    return Host.from_db(connection.alias, [f.attname for f in _HOST_FIELDS], converted)


def _place_in_python(requirement: Requirement) -> Host:
    """SQLite: its IMMEDIATE transactions already hold the database's write lock, so the
    ranking of rank_hosts, read in this transaction, is the state the create writes on."""
    amounts = requirement.amounts()
    eligible = Host.objects.filter(Q(scheduling=Scheduling.AUTOMATIC) & _region_q(requirement.region))
    eligible = eligible.filter(capacity.fits_q(amounts, 1))
    counts = _protocol_counts(requirement, [host.pk for host in eligible]) if requirement.spread_protocol else {}
    best = min(eligible, key=lambda host: sort_key(host, requirement, counts.get(host.pk, 0)), default=None)
    if best is None:
        considered, excluded, _fitting = exclusions(requirement)
        raise no_host_available(hosts_considered=considered, excluded=excluded, region=requirement.region)
    return best


def _protocol_counts(requirement: Requirement, host_ids) -> dict:
    node = Host._meta.get_field("nodes").related_model
    rows = (
        node.objects.filter(host_id__in=list(host_ids), image__protocol=requirement.protocol)
        .order_by()
        .values("host_id")
        .annotate(count=Count("pk"))
    )
    return {row["host_id"]: row["count"] for row in rows}


def sort_key(host, requirement: Requirement, same_protocol: int = 0, amounts=None) -> tuple:
    """The order of §11 (smallest first): with spread_protocol fewer same-protocol nodes, then
    the score (highest for binpack, lowest for spread), then the name."""
    value = capacity.score_key(host, requirement.amounts() if amounts is None else amounts)
    ranked = -value if requirement.strategy == "binpack" else value
    return (same_protocol if requirement.spread_protocol else 0, ranked, host.name)
