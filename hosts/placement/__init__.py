"""§11 placement: choose a host for a requirement and hold it, race-free; explain a refusal;
plan where N nodes would go; tell how many more fit (headroom). Knows nothing of nodes: it
takes a requirement (amounts, strategy, region, protocol) and returns a locked host.

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

from hosts.placement.choose import (
    REASONS,
    STRATEGIES,
    Requirement,
    exclusions,
    no_host_available,
    no_host_detail,
    place,
    requirement_check,
    sort_key,
)
from hosts.placement.plan import Headroom, PlacementPlan, headroom, placement_plan

__all__ = [
    "REASONS",
    "STRATEGIES",
    "Headroom",
    "PlacementPlan",
    "Requirement",
    "exclusions",
    "headroom",
    "no_host_available",
    "no_host_detail",
    "place",
    "placement_plan",
    "requirement_check",
    "sort_key",
]
