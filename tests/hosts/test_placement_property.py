"""Property: on random fleets, the database's allocatable, the fit function, the SQL ranking
(the host place() locks), the exclusion counts and headroom all agree with a brute-force model
written here from §11's words alone (Fractions, no shared code)."""

from decimal import Decimal
from fractions import Fraction

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config.errors import NoHostAvailable
from hosts import capacity
from hosts.models import Host
from hosts.placement import Requirement, exclusions, headroom, place, placement_plan

pytestmark = pytest.mark.django_db

MAX = 2**63 - 1
RES = ("cpu_cores", "memory_bytes", "disk_bytes")
COUNTER = {"cpu_cores": "node_cpu_cores", "memory_bytes": "node_memory_bytes", "disk_bytes": "node_disk_bytes"}
RATIO = {
    "cpu_cores": "cpu_allocation_ratio",
    "memory_bytes": "memory_allocation_ratio",
    "disk_bytes": "disk_allocation_ratio",
}

amount = st.one_of(st.integers(0, 20), st.integers(0, 10**6), st.integers(MAX - 10**6, MAX), st.integers(0, MAX))
ratio = st.one_of(
    st.sampled_from(["1", "0.0001", "1000", "1.5", "0.3333", "2.7183"]),
    st.integers(1, 10_000_000).map(lambda k: str(Decimal(k) / 10_000)),
)
host_values = st.fixed_dictionaries(
    {
        **{name: amount for name in RES},
        **{f"reserved_{name}": st.one_of(st.just(0), amount) for name in RES},
        **{RATIO[name]: ratio for name in RES},
        **{COUNTER[name]: st.one_of(st.just(0), st.integers(0, 30), amount) for name in RES},
        "node_count": st.integers(0, 5),
        "max_nodes": st.one_of(st.none(), st.integers(0, 6)),
        "region": st.sampled_from(["", "eu", "us"]),
        "scheduling": st.sampled_from(["automatic", "automatic", "manual", "draining"]),
    }
)
requests = st.fixed_dictionaries({name: st.one_of(st.just(0), st.integers(0, 30), amount) for name in RES})


def allocatable(values, name) -> int:
    size, reserved = values[name], values[f"reserved_{name}"]
    if reserved >= size:
        return 0
    exact = (size - reserved) * Fraction(Decimal(values[RATIO[name]]))
    return min(exact.numerator // exact.denominator, MAX)


def model_fits(values, alloc, requested) -> dict:
    verdict = {name: requested[name] <= 0 or values[COUNTER[name]] + requested[name] <= alloc[name] for name in RES}
    verdict["node_count"] = values["max_nodes"] is None or values["node_count"] + 1 <= values["max_nodes"]
    return verdict


def model_score(values, alloc, requested) -> Fraction:
    shares = [Fraction(values[COUNTER[name]] + requested[name], alloc[name]) for name in RES if alloc[name] > 0]
    return sum(shares, Fraction(0)) / len(shares) if shares else Fraction(0)


def model_room(values, alloc, requested):
    bounds = [max(alloc[n] - values[COUNTER[n]], 0) // requested[n] for n in RES if requested[n] > 0]
    if values["max_nodes"] is not None:
        bounds.append(max(values["max_nodes"] - values["node_count"], 0))
    return min(bounds) if bounds else None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fleet=st.lists(host_values, min_size=0, max_size=7),
    requested=requests,
    strategy=st.sampled_from(["binpack", "spread"]),
    region=st.sampled_from([None, "", "eu"]),
)
def test_database_fit_score_and_headroom_agree_with_the_model(fleet, requested, strategy, region):
    with transaction.atomic():
        rows = []
        for index, values in enumerate(fleet):
            host = Host.objects.create(
                name=f"h{index:02d}",
                **{k: v for k, v in values.items() if k not in COUNTER.values() and k != "node_count"},
            )
            Host.objects.filter(pk=host.pk).update(
                node_count=values["node_count"], **{COUNTER[n]: values[COUNTER[n]] for n in RES}
            )
            rows.append((Host.objects.get(pk=host.pk), values))
        requirement = Requirement(requested=requested, strategy=strategy, region=region)

        eligible, excluded = [], dict.fromkeys(("scheduling", "region", *RES, "node_count"), 0)
        room_total, unbounded, with_room = 0, False, 0
        for host, values in rows:
            alloc = {name: allocatable(values, name) for name in RES}
            assert host.allocatable() == alloc
            verdict = model_fits(values, alloc, requested)
            assert capacity.fits(host, requested, 1) == verdict
            assert capacity.score(host, requested) == model_score(values, alloc, requested)
            if values["scheduling"] != "automatic":
                excluded["scheduling"] += 1
                continue
            if region is not None and values["region"] != region:
                excluded["region"] += 1
                continue
            for name, ok in verdict.items():
                excluded[name] += 0 if ok else 1
            room = model_room(values, alloc, requested)
            unbounded = unbounded or room is None
            room_total += room or 0
            with_room += 1 if room is None or room > 0 else 0
            if all(verdict.values()):
                score = model_score(values, alloc, requested)
                eligible.append(((-score if strategy == "binpack" else score), host.name))

        considered, counted, fitting = exclusions(requirement)
        assert (considered, counted, fitting) == (len(fleet), excluded, len(eligible))

        room = headroom(requested, region=region)
        assert (room.nodes, room.hosts_with_room) == (None if unbounded else room_total, with_room)

        plan = placement_plan(requirement, 1)
        if eligible:
            best = min(eligible)[1]
            assert place(requirement).name == best
            assert [row["host_name"] for row in plan.placements] == [best]
        else:
            with pytest.raises(NoHostAvailable):
                place(requirement)
            assert plan.placed == 0 and plan.error is not None
        transaction.set_rollback(True)
