"""The fleet's capacity from host rows alone (§12): sums per region in one grouped statement, the
hosts' tiles (or, past TILE_LIMIT hosts, a histogram per region by utilisation decile), and the
`nodefleet_capacity` gauge, set from the same sums before every /metrics scrape."""

from collections.abc import Iterable
from datetime import datetime
from fractions import Fraction

from django.db.models import BigIntegerField, Case, Count, F, FloatField, IntegerField, Q, Sum, Value, When
from django.db.models.functions import Cast, Floor, Greatest, Least
from django.utils import timezone
from prometheus_client import Gauge

from config.units import RESOURCES
from hosts.capacity import ALLOCATABLE, COUNTER, over_allocated, over_allocated_q
from hosts.models import Host, Scheduling
from hosts.presence import offline_condition

#: Past this many hosts the page draws a histogram per region instead of a tile per host.
TILE_LIMIT = 2000
#: Utilisation buckets: 0..9 the deciles (90-100 % includes full), 10 over allocatable.
OVER_BUCKET = 10
KINDS = ("used", "allocatable", "physical")

CAPACITY = Gauge(
    "nodefleet_capacity",
    "The fleet's capacity per resource and region (kind: physical, allocatable, used), from host rows.",
    ["resource", "region", "kind"],
    multiprocess_mode="mostrecent",
)


def _whole(value) -> int:
    return int(value or 0)


def region_rows(*, now: datetime | None = None) -> list[dict]:
    """Per region (sorted by name; "" = no region), ONE grouped statement over host rows:
    `hosts`, per resource `{used, allocatable, physical}`, `node_slots` `{used, allocatable,
    unlimited}` (allocatable: Σ max_nodes of the hosts that have one; unlimited: hosts without),
    `offline`, `over_allocated`, `scheduling` `{automatic, manual, draining}`."""
    sums = {}
    for name in RESOURCES:
        sums[f"physical_{name}"] = Sum(name)
        sums[f"allocatable_{name}"] = Sum(ALLOCATABLE[name])
        sums[f"used_{name}"] = Sum(COUNTER[name])
    rows = (
        Host.objects.order_by("region")
        .values("region")
        .annotate(
            hosts=Count("pk"),
            slots_used=Sum("node_count"),
            slots_allocatable=Sum("max_nodes"),
            slots_unlimited=Count("pk", filter=Q(max_nodes__isnull=True)),
            offline=Count("pk", filter=offline_condition(now=now)),
            over=Count("pk", filter=over_allocated_q()),
            **{f"scheduling_{value}": Count("pk", filter=Q(scheduling=value)) for value in Scheduling.values},
            **sums,
        )
    )
    return [
        {
            "region": row["region"],
            "hosts": row["hosts"],
            **{name: {kind: _whole(row[f"{kind}_{name}"]) for kind in KINDS} for name in RESOURCES},
            "node_slots": {
                "used": _whole(row["slots_used"]),
                "allocatable": _whole(row["slots_allocatable"]),
                "unlimited": row["slots_unlimited"],
            },
            "offline": row["offline"],
            "over_allocated": row["over"],
            "scheduling": {value: row[f"scheduling_{value}"] for value in Scheduling.values},
        }
        for row in rows
    ]


def fleet_totals(regions: Iterable[dict]) -> dict:
    """The fleet's row: the regions' SQL sums added up (a handful of rows, not hosts)."""
    regions = list(regions)
    total = {
        "hosts": sum(r["hosts"] for r in regions),
        **{name: {kind: sum(r[name][kind] for r in regions) for kind in KINDS} for name in RESOURCES},
        "node_slots": {key: sum(r["node_slots"][key] for r in regions) for key in ("used", "allocatable", "unlimited")},
        "offline": sum(r["offline"] for r in regions),
        "over_allocated": sum(r["over_allocated"] for r in regions),
        "scheduling": {value: sum(r["scheduling"][value] for r in regions) for value in Scheduling.values},
    }
    return total


def utilisation(used: int, allocatable: int) -> Fraction:
    """used / allocatable, exact; nothing allocatable: 0 when nothing is used, else "over" (2)."""
    if allocatable > 0:
        return Fraction(used, allocatable)
    return Fraction(2) if used > 0 else Fraction(0)


def bucket_of(share: Fraction, *, over: bool) -> int:
    """The histogram's bucket: 0..9 the deciles (a full host in 9), OVER_BUCKET when over allocatable."""
    return OVER_BUCKET if over or share > 1 else min(int(share * 10), 9)


TILE_FIELDS = (
    "id",
    "name",
    "region",
    "scheduling",
    "max_nodes",
    "node_count",
    "agent_token_digest",
    "agent_seen_at",
    *RESOURCES,
    *COUNTER.values(),
    *ALLOCATABLE.values(),
)


def host_tiles(*, drifted: set[str], now: datetime | None = None) -> list[dict]:
    """One tile per host (name order within region order), ONE statement: its numbers, its highest
    utilisation of cpu, memory and disk, and its marks (drifted by the last audit, offline,
    draining, manual, over-allocated)."""
    now = now or timezone.now()
    hosts = Host.objects.annotate(offline=offline_condition(now=now)).only(*TILE_FIELDS).order_by("region", "name")
    tiles = []
    for host in hosts:
        shares = {
            name: utilisation(getattr(host, COUNTER[name]), getattr(host, ALLOCATABLE[name])) for name in RESOURCES
        }
        over = over_allocated(host)
        highest = max(shares.values())
        marks = [
            mark
            for mark, present in (
                ("drifted", str(host.pk) in drifted),
                ("offline", host.offline),
                ("draining", host.scheduling == Scheduling.DRAINING),
                ("manual", host.scheduling == Scheduling.MANUAL),
                ("over-allocated", bool(over)),
            )
            if present
        ]
        tiles.append(
            {
                "host": host,
                "region": host.region,
                "utilisation": {name: float(share) for name, share in shares.items()},
                "highest": float(highest),
                "bucket": bucket_of(highest, over=bool(set(over) & set(RESOURCES))),
                "marks": marks,
                "over": over,
            }
        )
    return tiles


def _share(name: str):
    used, allocatable = F(COUNTER[name]), F(ALLOCATABLE[name])
    return Case(
        When(**{f"{ALLOCATABLE[name]}__gt": 0}, then=Cast(used, FloatField()) / Cast(allocatable, FloatField())),
        When(**{f"{COUNTER[name]}__gt": 0}, then=Value(2.0)),
        default=Value(0.0),
        output_field=FloatField(),
    )


def decile_histogram() -> dict[str, list[int]]:
    """Per region, hosts per utilisation bucket (11: the deciles, then over allocatable), ONE
    grouped statement: what the page shows instead of tiles past TILE_LIMIT hosts."""
    resources_over = Q(*(Q(**{f"{COUNTER[name]}__gt": F(ALLOCATABLE[name])}) for name in RESOURCES), _connector=Q.OR)
    bucket = Case(
        When(resources_over, then=Value(OVER_BUCKET)),
        default=Least(Cast(Floor(Greatest(*(_share(name) for name in RESOURCES)) * 10), BigIntegerField()), Value(9)),
        output_field=IntegerField(),
    )
    rows = (
        Host.objects.annotate(bucket=bucket)
        .order_by("region", "bucket")
        .values("region", "bucket")
        .annotate(n=Count("pk"))
    )
    histogram: dict[str, list[int]] = {}
    for row in rows:
        histogram.setdefault(row["region"], [0] * (OVER_BUCKET + 1))[row["bucket"]] = row["n"]
    return histogram


def publish_capacity() -> None:
    """Sets nodefleet_capacity{resource,region,kind} from the regions' sums (one statement);
    a region that no longer has hosts disappears from the gauge."""
    rows = region_rows()
    CAPACITY.clear()
    for row in rows:
        for name in RESOURCES:
            for kind in KINDS:
                CAPACITY.labels(resource=name, region=row["region"], kind=kind).set(row[name][kind])
