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
from config.units import BIGINT_MAX, RESOURCES
from hosts import capacity
from hosts.models import COUNTER_OF_RESOURCE, Host


class Amounts(Protocol):
    cpu_cores: int
    memory_bytes: int
    disk_bytes: int


@dataclass(frozen=True)
class CounterCheck:
    """The counters after a change, whether each resource fits (allocatable, §11), whether the
    node slots do, and the error applying raises."""

    after: dict[str, int]
    fits: dict[str, bool]
    error: Exception | None
    slots_fit: bool = True

    @property
    def fits_all(self) -> bool:
        return self.slots_fit and all(self.fits.values())


def host_counters_check(*, host: Host, delta: Amounts, node_count_delta: int, force: bool = False) -> CounterCheck:
    """Checks a change in the contract's order: below zero (`counter_drift`), above 2**63-1
    (`resource_overflow`), capacity (`insufficient_capacity`, skipped with force) — the fit of
    hosts.capacity: allocatable per resource and, for a create, a node slot. Only a dimension
    that grows must fit: shrinking is allowed even on a host already over allocatable."""
    changes = {"node_count": node_count_delta}
    changes.update({COUNTER_OF_RESOURCE[name]: getattr(delta, name) for name in RESOURCES})
    after = {counter: getattr(host, counter) + change for counter, change in changes.items()}
    requested = {name: getattr(delta, name) for name in RESOURCES}
    verdict = capacity.fits(host, requested, node_count_delta)
    fits = {name: verdict[name] for name in RESOURCES}
    error = _first_error(host, changes, after, requested, node_count_delta, force)
    return CounterCheck(after=after, fits=fits, error=error, slots_fit=verdict[capacity.NODE_COUNT])


def _first_error(host, changes, after, requested, node_count_delta, force):
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
    shortfalls = capacity.shortfalls(host, requested, node_count_delta)
    if shortfalls:
        detail = "; ".join(capacity.shortfall_text(host.name, shortfall) for shortfall in shortfalls)
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
