"""Applying a change of allocation to a host's counters: checks, then one UPDATE that adds the
deltas in SQL (`node_cpu_cores = node_cpu_cores + %s`), so a change never writes back a value read earlier.

The caller holds the host's row lock (hosts.locks) and passes the host as it read it under
that lock, so the values here are the database's current ones and the host after the change
is known without reading it again.
"""

from dataclasses import dataclass
from typing import Protocol

from config.db.statements import add_to_row
from config.errors import CounterDrift, InsufficientCapacity, ResourceOverflow
from config.units import BIGINT_MAX, RESOURCE_LABELS, RESOURCES, human_amount
from hosts.models import COUNTER_OF_RESOURCE, Host


class Amounts(Protocol):
    cpu_cores: int
    memory_bytes: int
    disk_bytes: int


@dataclass(frozen=True)
class CounterCheck:
    """The counters after a change, whether each resource fits, and the error applying raises."""

    after: dict[str, int]
    fits: dict[str, bool]
    error: Exception | None


def host_counters_check(*, host: Host, delta: Amounts, node_count_delta: int, force: bool = False) -> CounterCheck:
    """Checks a change in the contract's order: below zero (`counter_drift`), above 2**63-1
    (`resource_overflow`), capacity (`insufficient_capacity`, skipped with force). Only a
    resource that grows must fit: shrinking is allowed even on a host already over capacity."""
    changes = {"node_count": node_count_delta}
    changes.update({COUNTER_OF_RESOURCE[name]: getattr(delta, name) for name in RESOURCES})
    after = {counter: getattr(host, counter) + change for counter, change in changes.items()}
    fits = {
        name: getattr(delta, name) <= 0 or after[COUNTER_OF_RESOURCE[name]] <= getattr(host, name) for name in RESOURCES
    }
    return CounterCheck(after=after, fits=fits, error=_first_error(host, changes, after, fits, force))


def _first_error(host, changes, after, fits, force):
    for counter, value in after.items():
        if value < 0:
            return CounterDrift(
                f"Counter {counter} of host {host.name} would go below zero ({getattr(host, counter)} "
                f"{changes[counter]:+d}): the host's counters disagree with its nodes. "
                f"Run `manage.py repair_counters --host {host.name}`.",
                host=host.name,
                resource=counter.removeprefix("node_"),
            )
    for counter, value in after.items():
        if value > BIGINT_MAX:
            return ResourceOverflow(
                f"Counter {counter} of host {host.name} would be {value}, beyond the limit of {BIGINT_MAX} (2**63-1).",
                resource=counter.removeprefix("node_"),
            )
    if force:
        return None
    shortfalls = [
        {
            "resource": name,
            "requested": changes[COUNTER_OF_RESOURCE[name]],
            "available": max(getattr(host, name) - getattr(host, COUNTER_OF_RESOURCE[name]), 0),
        }
        for name in RESOURCES
        if not fits[name]
    ]
    if shortfalls:
        detail = "; ".join(
            f"not enough {RESOURCE_LABELS[s['resource']]} on {host.name} (needs "
            f"{human_amount(s['resource'], s['requested'])}, {human_amount(s['resource'], s['available'])} free)"
            for s in shortfalls
        )
        return InsufficientCapacity(detail, host=host.name, shortfalls=shortfalls)
    return None


def host_counters_apply(*, host: Host, delta: Amounts, node_count_delta: int, force: bool = False) -> Host:
    """Checks the change (raising its error) and adds it to the host's counters as F() deltas.
    Returns the same host object with the counters it now holds."""
    return host_counters_write(
        host=host, check=host_counters_check(host=host, delta=delta, node_count_delta=node_count_delta, force=force)
    )


def host_counters_write(*, host: Host, check: CounterCheck) -> Host:
    """Writes a change already checked by host_counters_check (raising its error, if any)."""
    increments = host_counters_increments(host=host, check=check)
    if increments:
        add_to_row(Host, host.pk, **increments)
    return host_counters_written(host=host, check=check)


def host_counters_increments(*, host: Host, check: CounterCheck) -> dict[str, int]:
    """The deltas a checked change adds to the counters that change (raising its error, if any),
    for a caller that writes them with other rows (config.db.statements.write_together)."""
    if check.error:
        raise check.error
    return {
        counter: value - getattr(host, counter)
        for counter, value in check.after.items()
        if value != getattr(host, counter)
    }


def host_counters_written(*, host: Host, check: CounterCheck) -> Host:
    """The same host object, holding the counters after the change (once it is written)."""
    for counter, value in check.after.items():
        setattr(host, counter, value)
    return host
