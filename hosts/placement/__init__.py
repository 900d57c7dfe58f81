"""§11 placement: choose a host for a requirement and hold it, race-free, and explain a refusal
(choose.py: one ranked statement over host rows, a claim of one host, fall through); plan where N
nodes would go and tell how many more fit (plan.py: host rows only, nothing locked). Knows
nothing of nodes: it takes a requirement (amounts, strategy, region, protocol)."""

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
