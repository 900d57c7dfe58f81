"""Service: set hosts' allocation counters back to the truth of their nodes (host_counters_repair).

The invariant it restores: a host's counters equal the COUNT and SUMs of its nodes. An unlocked
grouped query finds the hosts that disagree (every writer keeps the invariant at each commit, so
a statement's snapshot shows exactly the hosts drifted around the application); those are
repaired in batches, each its own transaction that locks the batch's hosts in pk order
(hosts.locks.lock_hosts) and only then reads the truth: every writer of a node holds its host's
lock, so under those locks the nodes of the batch cannot change and the truth read is final.
"""

import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from config.db import atomic_with_retry, read_one_snapshot
from config.errors import ApplicationError, ResourceOverflow
from config.units import BIGINT_MAX
from hosts.audit import host_drift_scan, host_truths
from hosts.locks import lock_hosts
from hosts.models import COUNTER_FIELDS, CounterRepair, Host, Source

logger = logging.getLogger("hosts.repair")

#: How many hosts checked between two reports to `progress`.
PROGRESS_EVERY = 500


@dataclass(frozen=True)
class CounterChange:
    """One host's counters as they were (`old`) and as the repair set them (`new`)."""

    host_id: uuid.UUID
    host_name: str
    old: dict[str, int]
    new: dict[str, int]

    @property
    def fields(self) -> list[str]:
        """The counters that change, in COUNTER_FIELDS order."""
        return [counter for counter in COUNTER_FIELDS if self.old[counter] != self.new[counter]]


@dataclass(frozen=True)
class HostRefusal:
    """A host the repair could not set right, and why (the error's detail)."""

    host_id: uuid.UUID
    host_name: str
    error: ApplicationError


@dataclass
class RepairReport:
    """What a repair found and did: hosts checked, every change (applied, or planned in a dry
    run) and the hosts it could not repair."""

    dry_run: bool = False
    hosts_checked: int = 0
    changes: list[CounterChange] = field(default_factory=list)
    refused: list[HostRefusal] = field(default_factory=list)


def host_counters_reconcile(
    *,
    host_ids: Iterable,
    dry_run: bool = False,
    actor=None,
    source: str = Source.CLI,
    refused: list[HostRefusal] | None = None,
) -> list[CounterChange]:
    """Inside the caller's transaction: locks the hosts in pk order (unless `dry_run`), reads
    the truth of their nodes under those locks, writes the counters that differ with a
    CounterRepair each, and returns the changes. Call it holding no lock on another host.
    A host whose nodes sum past 2**63-1 raises `resource_overflow`, or, given a `refused` list,
    is left as it is and appended there while the other hosts are repaired."""
    pks = list(host_ids)
    hosts = lock_hosts(pks) if not dry_run else list(Host.objects.filter(pk__in=pks).order_by("pk"))
    truths = host_truths(host_ids=pks)
    changes = []
    for host in hosts:
        new = truths[host.pk]
        if new == host.counters():
            continue
        overflow = _overflow(host, new)
        if overflow is not None:
            if refused is None:
                raise overflow
            refused.append(HostRefusal(host.pk, host.name, overflow))
            continue
        changes.append(CounterChange(host.pk, host.name, host.counters(), new))
        for counter, value in new.items():
            setattr(host, counter, value)
    if changes and not dry_run:
        changed_pks = {change.host_id for change in changes}
        changed = [host for host in hosts if host.pk in changed_pks]
        Host.objects.bulk_update(changed, COUNTER_FIELDS)
        CounterRepair.objects.bulk_create(
            CounterRepair(
                host_id=change.host_id,
                actor=actor if actor is not None and actor.is_authenticated else None,
                source=source,
                **{f"old_{counter}": value for counter, value in change.old.items()},
                **{f"new_{counter}": value for counter, value in change.new.items()},
            )
            for change in changes
        )
    return changes


def _overflow(host: Host, truth: dict[str, int]) -> ResourceOverflow | None:
    for counter, value in truth.items():
        if value > BIGINT_MAX:
            return ResourceOverflow(
                f"The nodes of host {host.name} sum to {value} for {counter}, beyond the limit of "
                f"{BIGINT_MAX} (2**63-1): its counter cannot hold them. Move or delete nodes first.",
                resource=counter.removeprefix("node_"),
            )
    return None


def host_counters_repair(
    *,
    host_ids: Iterable | None = None,
    batch_size: int = 500,
    dry_run: bool = False,
    actor=None,
    source: str = Source.CLI,
    progress: Callable[[int], object] | None = None,
) -> RepairReport:
    """Sets every (or every given) host's counters to the COUNT/SUMs of its nodes. One grouped
    query, unlocked and streamed, finds the hosts whose counters disagree; they are repaired
    `batch_size` at a time, each batch one transaction that locks its hosts in pk order and only
    then reads the truth (host_counters_reconcile). Records a CounterRepair (old, new, actor,
    source) per changed host. Idempotent: a second run changes nothing. `dry_run` locks and
    writes nothing. `progress(n)` is told of the hosts checked as the scan goes.

    A host that cannot be repaired (its nodes sum past 2**63-1) is reported in `refused` and
    the others are repaired all the same; a batch the database refuses (`busy`: a lock wait
    timed out) reports its hosts there too and the next batch goes on."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    report = RepairReport(dry_run=dry_run)
    batch, unreported = [], 0

    def repair(pks):
        refused = []

        def attempt():
            refused.clear()  # a retried transaction starts over
            if dry_run:  # unlocked: the counters and the truth read in one snapshot
                read_one_snapshot()
            return host_counters_reconcile(host_ids=pks, dry_run=dry_run, actor=actor, source=source, refused=refused)

        try:
            changes = atomic_with_retry(attempt)
        except ApplicationError as error:
            names = dict(Host.objects.filter(pk__in=pks).values_list("pk", "name"))
            report.refused.extend(HostRefusal(pk, names.get(pk, str(pk)), error) for pk in pks)
            logger.warning("counters not repaired: %d host(s): %s", len(pks), error.detail)
            return
        report.refused.extend(refused)
        for refusal in refused:
            logger.warning("counters not repaired: host=%s: %s", refusal.host_name, refusal.error.detail)
        report.changes.extend(changes)
        for change in changes if not dry_run else ():
            logger.info(
                "counters repaired: host=%s old=%s new=%s source=%s", change.host_name, change.old, change.new, source
            )

    for pk, drifted in host_drift_scan(host_ids=host_ids):
        report.hosts_checked += 1
        unreported += 1
        if drifted:
            batch.append(pk)
        if len(batch) == batch_size:
            repair(batch)
            batch = []
        if progress is not None and unreported == PROGRESS_EVERY:
            progress(unreported)
            unreported = 0
    if batch:
        repair(batch)
    if progress is not None and unreported:
        progress(unreported)
    return report
