"""Service: rewrite node allocations that disagree with their config (node_allocations_repair).

The invariant it keeps: a host's counters equal the COUNT and SUMs of its nodes at every commit.
Each node is repaired in its own transaction that locks the node with its host, in the core's
order (hosts.locks.lock_with_host), recomputes the required allocation under that lock, writes
the node and then sets that host's counters to the truth of its nodes (hosts.repair, under the
host lock already held). When the counters were right before, that moves them by exactly the
node's delta; when they had drifted too, they end right all the same, never below zero.
"""

import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.utils import timezone

from config.db import atomic_with_retry
from config.errors import ApplicationError
from hosts.locks import lock_with_host
from hosts.models import Source
from hosts.repair import CounterChange, host_counters_reconcile
from nodes.audit import node_allocation_findings, node_verdict
from nodes.changes import image_spec
from nodes.models import Image, Node, NodeEvent, NodeLog
from nodes.resources import ImageSpec, Resources

logger = logging.getLogger("nodes.repair")


@dataclass(frozen=True)
class AllocationChange:
    """One node's allocation (and, for a corrupt config, its config) as it was and as repaired."""

    node_id: uuid.UUID
    node_name: str
    host_name: str
    old: dict[str, int]
    new: dict[str, int]
    old_config: object = None
    new_config: dict | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def config_repaired(self) -> bool:
        return self.new_config is not None


@dataclass
class NodeRepairReport:
    """Node changes (applied, or planned in a dry run), the host counters they moved, and the
    nodes that could not be repaired (with the reason)."""

    dry_run: bool = False
    changes: list[AllocationChange] = field(default_factory=list)
    counter_changes: list[CounterChange] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)


def _change(node: Node, host_name: str, spec: ImageSpec) -> AllocationChange | None:
    """What repairing `node` would change (None: nothing). Refuses (ApplicationError) a node
    whose image has invalid requirements or whose allocation would pass 2**63-1."""
    verdict = node_verdict(spec, node.properties)
    recorded = Resources.of(node)
    if verdict.allocation == recorded and not verdict.corrupt:
        return None
    spec.validate()
    verdict.allocation.check_within_bigint(f"Node {node.name} on {spec.label}")
    return AllocationChange(
        node_id=node.pk,
        node_name=node.name,
        host_name=host_name,
        old=recorded.as_dict(),
        new=verdict.allocation.as_dict(),
        old_config=node.properties if verdict.corrupt else None,
        new_config=verdict.config if verdict.corrupt else None,
        warnings=verdict.warnings,
    )


def _spec(image_id) -> ImageSpec:
    """The spec of a node's image, read now (the node may have moved to it a moment ago)."""
    return image_spec(Image.objects.prefetch_related("properties").get(pk=image_id))


def _repair_node(node_id, *, actor, source) -> tuple[AllocationChange | None, list[CounterChange]]:
    try:
        node = lock_with_host(Node.objects, node_id)
    except Node.DoesNotExist:  # deleted since the audit: nothing left to repair
        return None, []
    change = _change(node, node.host.name, _spec(node.image_id))
    if change is None:  # repaired meanwhile (or upgraded): the lock shows it is right now
        return None, []
    updates = {**change.new, "updated_at": timezone.now()}
    if change.config_repaired:
        updates["properties"] = change.new_config
    Node.objects.filter(pk=node.pk).update(**updates)
    NodeLog.objects.create(
        event=NodeEvent.ALLOCATION_REPAIRED,
        node_id=node.pk,
        node_name=node.name,
        host=node.host,
        host_name=node.host.name,
        old_image_id=node.image_id,
        new_image_id=node.image_id,
        warnings=change.warnings,
        actor=actor if actor is not None and actor.is_authenticated else None,
        source=source,
        **{f"old_{name}": amount for name, amount in change.old.items()},
        **{f"new_{name}": amount for name, amount in change.new.items()},
    )
    return change, host_counters_reconcile(host_ids=[node.host_id], actor=actor, source=source)


def node_allocations_repair(
    *,
    host_ids: Iterable | None = None,
    dry_run: bool = False,
    actor=None,
    source: str = Source.CLI,
    progress: Callable[[int], object] | None = None,
) -> NodeRepairReport:
    """Sets every node allocation that disagrees with the required allocation of its config on
    its image back to it (a corrupt config is rewritten as it reads: its string values, the
    image's defaults for the rest), one node per transaction, NodeLog `allocation_repaired`,
    its host's counters moved with it. Idempotent. `dry_run` locks and writes nothing."""
    report = NodeRepairReport(dry_run=dry_run)
    last = None
    for finding in node_allocation_findings(host_ids=host_ids):
        if finding.node_id == last:  # a node's findings come together: one repair each
            continue
        last = finding.node_id
        try:
            if dry_run:
                node = Node.objects.filter(pk=finding.node_id).first()
                change = node and _change(node, finding.host_name, _spec(node.image_id))
                counter_changes = []
            else:
                change, counter_changes = atomic_with_retry(
                    lambda node_id=finding.node_id: _repair_node(node_id, actor=actor, source=source)
                )
        except ApplicationError as error:
            report.refused.append((finding.node_name, error.detail))
            logger.warning("node %s not repaired: %s", finding.node_name, error.detail)
            continue
        if change is not None:
            report.changes.append(change)
            report.counter_changes.extend(counter_changes)
            if not dry_run:
                logger.info(
                    "allocation repaired: node=%s host=%s old=%s new=%s source=%s",
                    change.node_name,
                    change.host_name,
                    change.old,
                    change.new,
                    source,
                )
        if progress is not None:
            progress(1)
    return report
