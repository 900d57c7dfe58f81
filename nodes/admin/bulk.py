"""Operations on several nodes at once, as support staff run them from the admin: a bulk
upgrade's plan (counting the earlier rows of the same host), then one service call per node
(node_upgrade, node_delete), summed up in one line. Nothing here writes but those services."""

import copy
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from config.errors import AlreadyOnImage, ApplicationError
from config.units import RESOURCES
from hosts.capacity import free
from hosts.counters import host_counters_check
from hosts.models import Host, Source
from nodes.changes import UpgradeOutcome, node_delete, node_upgrade, node_upgrade_plan
from nodes.models import Node

#: The most nodes one bulk upgrade takes: each is its own service call and its own transaction.
MAX_NODES = 500


@dataclass(frozen=True)
class PlannedUpgrade:
    """One row of a bulk plan: the node's own plan, and its host as it would be once this row
    and every earlier row of the same host are applied."""

    outcome: UpgradeOutcome
    host_after: Host
    fits: dict[str, bool]
    error: ApplicationError | None

    @property
    def skipped(self) -> bool:
        return isinstance(self.error, AlreadyOnImage)

    @property
    def free_after(self) -> dict[str, int]:
        """Allocatable minus counters per resource (negative: over allocatable by that much)."""
        return {name: free(self.host_after, name) for name in RESOURCES}


def _in_plan_order(node_ids: Iterable) -> list[tuple[uuid.UUID, str]]:
    """(id, name) of the nodes that still exist, grouped by host so the plan reads host by host."""
    return list(Node.objects.filter(pk__in=list(node_ids)).order_by("host__name", "name").values_list("pk", "name"))


def nodes_upgrade_plan(*, node_ids: Iterable, image_id, force: bool = False) -> list[PlannedUpgrade]:
    """The dry run of nodes_upgrade: each node's plan (node_upgrade_plan), with its host's
    counters carried from row to row, so a host that fits each node alone but not all of
    them together shows where it stops fitting. Writes nothing."""
    hosts: dict[uuid.UUID, Host] = {}  # host id -> counters after the earlier rows applied
    rows = []
    for node_id, _name in _in_plan_order(node_ids):
        outcome = node_upgrade_plan(node_id=node_id, image_id=image_id, force=force)
        before = hosts.get(outcome.node.host_id, outcome.node.host)
        # outcome.error is either a refusal of the image (kept) or the counters' verdict on the
        # host as it is now (outcome.counters.error), which is re-judged on the host as it will be.
        image_error = outcome.error if outcome.error is not outcome.counters.error else None
        check = host_counters_check(host=before, delta=outcome.delta, node_count_delta=0, force=force)
        error = image_error or check.error
        after = before
        if error is None:
            after = copy.copy(before)
            for counter, value in check.after.items():
                setattr(after, counter, value)
        hosts[outcome.node.host_id] = after
        rows.append(PlannedUpgrade(outcome=outcome, host_after=after, fits=check.fits, error=error))
    return rows


@dataclass
class BulkReport:
    """What one service call per node did: done (the services' results), skipped, failed."""

    verb: str
    #: A change the host's agent carries out (an upgrade): what was done is that it *started*.
    started: str = ""
    done: list = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (node name, the error's detail)

    def summary(self) -> str:
        """`3 deleted, 1 failed: node-x: <detail>`; for a change the hosts carry out, `1 upgrade
        started; the host will report` (the node shows upgrading until then), then the rest."""
        done = len(self.done)
        if self.started:
            parts = [f"{done} {self.started}{'' if done == 1 else 's'} started"]
            if done:
                parts[0] += "; the host will report" if done == 1 else "; their hosts will report"
        else:
            parts = [f"{done} {self.verb}"]
        if self.skipped:
            parts.append(f"{len(self.skipped)} skipped (already on the image)")
        if self.failed:
            reasons = "; ".join(f"{name}: {detail}" for name, detail in self.failed)
            parts.append(f"{len(self.failed)} failed: {reasons}")
        return (". " if self.started else ", ").join(parts)


def _existing(node_ids: Iterable, report: BulkReport) -> list[tuple[uuid.UUID, str]]:
    """The nodes in plan order; those deleted since they were selected are reported failed."""
    node_ids = {uuid.UUID(str(node_id)) for node_id in node_ids}
    ordered = _in_plan_order(node_ids)
    for node_id in sorted(node_ids - {node_id for node_id, _name in ordered}):
        report.failed.append((str(node_id), "the node no longer exists"))
    return ordered


def nodes_upgrade(
    *, node_ids: Iterable, image_id, force: bool = False, actor=None, source: str = Source.ADMIN
) -> BulkReport:
    """Upgrades each node with node_upgrade (its own transaction), in the plan's order. A node
    already on the image is skipped; any other refusal is recorded and the next node goes on."""
    report = BulkReport("upgraded", started="upgrade")
    for node_id, name in _existing(node_ids, report):
        try:
            report.done.append(
                node_upgrade(node_id=node_id, image_id=image_id, force=force, actor=actor, source=source)
            )
        except AlreadyOnImage:
            report.skipped.append(name)
        except ApplicationError as error:
            report.failed.append((name, error.detail))
    return report


def nodes_delete(*, node_ids: Iterable, actor=None, source: str = Source.ADMIN) -> BulkReport:
    """Deletes each node with node_delete (its own transaction); `done` holds the deleted nodes.
    A refusal (e.g. counter drift) is recorded and the next node goes on."""
    report = BulkReport("deleted")
    for node_id, name in _existing(node_ids, report):
        try:
            report.done.append(node_delete(node_id=node_id, actor=actor, source=source).node)
        except ApplicationError as error:
            report.failed.append((name, error.detail))
    return report
