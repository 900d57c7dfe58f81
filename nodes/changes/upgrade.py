"""node_upgrade and its dry run, node_upgrade_plan; upgrade_outcome, the computation both (and a
rollout's plan) share; and the upgrade's one-statement write (config.db.statements.write_together).

The invariant: at every commit, a host's counters equal the COUNT and SUMs of its nodes'
allocations. The upgrade runs in one transaction that holds the node's and host's row locks
(hosts.locks) while the counters change by deltas added in SQL (hosts.counters), and writes the
node, the counters, the NodeLog entry and the Command together, or nothing.
"""

import copy
import logging
import time
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from config.db import atomic_with_retry
from config.db.statements import write_together
from config.errors import (
    AlreadyOnImage,
    ApplicationError,
    Busy,
    IncompatibleImage,
    InsufficientCapacity,
    InvalidImageConfig,
    NodeBusy,
    NotFound,
)
from config.http.logging import log_event
from config.http.metrics import LOCK_WAIT_SECONDS, UPGRADE_SECONDS, UPGRADES, timed
from config.units import BIGINT_MAX
from hosts.counters import CounterCheck, host_counters_check, host_counters_increments, host_counters_written
from hosts.models import Host, Source
from nodes.changes.common import (
    _actor_name,
    _as_uuid,
    _command_values,
    _forced,
    _refusals_logged,
    allocation_fields,
    node_event_values,
)
from nodes.locks import node_with_images
from nodes.models import (
    Command,
    CommandKind,
    CommandStatus,
    Node,
    NodeEvent,
    NodeLog,
    NodeState,
    command_status_transition,
    node_state_transition,
)
from nodes.resources import ImageSpec, Resources, carry_over, required_allocation

logger = logging.getLogger("nodes.services")  # the services' log lines keep their name


@dataclass(frozen=True)
class UpgradeOutcome:
    """An upgrade, planned or applied: both images and allocations, the host's counters after
    (as they are, or would be), `fits` per resource and, for a plan, the error applying raises.
    `superseded` is the node's `pending` upgrade command this upgrade replaces, if any."""

    node: Node
    host: Host
    from_image: ImageSpec
    to_image: ImageSpec
    old: Resources
    new: Resources
    config: dict[str, str]
    counters: CounterCheck
    warnings: list[str] = field(default_factory=list)
    error: ApplicationError | None = None
    superseded: Command | None = None

    @property
    def delta(self) -> Resources:
        return self.new - self.old

    @property
    def fits(self) -> dict[str, bool]:
        return self.counters.fits

    @property
    def would_apply(self) -> bool:
        """A plan's verdict: applying it now would succeed."""
        return self.error is None

    @property
    def capacity_checked(self) -> bool:
        """Whether every check before capacity passed, so `fits` answers a real question."""
        return self.error is None or isinstance(self.error, InsufficientCapacity)

    @property
    def new_known(self) -> bool:
        """Whether `new` is an allocation the node could hold: not on an image of another
        protocol or with invalid requirements, nor past 64 bits."""
        if isinstance(self.error, IncompatibleImage | InvalidImageConfig):
            return False
        return all(amount <= BIGINT_MAX for _, amount in self.new.items())


def busy_refusal(node: Node, command: Command | None) -> NodeBusy | None:
    """§2/§9: a node whose host works on a command for it (`acked`), or whose `node_create` is
    still open, cannot be upgraded; a `pending` upgrade command is superseded instead."""
    if command is None or (command.kind == CommandKind.NODE_UPGRADE and command.status == CommandStatus.PENDING):
        return None
    doing = "creating it" if command.kind == CommandKind.NODE_CREATE else f"working on {command.kind} {command.pk}"
    return NodeBusy(
        f"Node {node.name} cannot change now: its host is {doing} (command {command.pk}, {command.status}). "
        "Wait for the agent's result, or cancel the command.",
        command_id=command.pk,
        command_status=command.status,
    )


def _refusal(
    node: Node, old: ImageSpec, new: ImageSpec, allocation: Resources, busy: NodeBusy | None
) -> ApplicationError | None:
    """The first refusal of the checks of §2 that precede the counters', in the contract's order
    (node_busy right after "node and image exist": whatever the target, the node cannot change)."""
    if busy is not None:
        return busy
    if new.id == old.id:
        return AlreadyOnImage(f"Node {node.name} already runs {new.label}; nothing to upgrade.")
    if new.protocol != old.protocol:
        return IncompatibleImage(
            f"Node {node.name} runs {old.label}; image {new.label} is of another protocol "
            f"({new.protocol}), so the node cannot be upgraded to it."
        )
    try:
        new.validate()
        allocation.check_within_bigint(f"Node {node.name} on {new.label}")
    except ApplicationError as error:
        return error
    return None


def upgrade_outcome(node: Node, old: ImageSpec, new: ImageSpec, command, *, force: bool) -> UpgradeOutcome:
    """Computes an upgrade of `node` (its host joined) without writing anything."""
    recorded = Resources.of(node)  # what the host's counters hold for this node
    config, warnings = carry_over(node.properties, old, new)
    allocation = required_allocation(new, config) if new.id != old.id else recorded
    check = host_counters_check(host=node.host, delta=allocation - recorded, node_count_delta=0, force=force)
    host_after = copy.copy(node.host)
    for counter, value in check.after.items():
        setattr(host_after, counter, value)
    busy = busy_refusal(node, command)
    return UpgradeOutcome(
        node=node,
        host=host_after,
        from_image=old,
        to_image=new,
        old=recorded,
        new=allocation,
        config=config,
        counters=check,
        warnings=warnings,
        error=_refusal(node, old, new, allocation, busy) or check.error,
        superseded=command if busy is None else None,
    )


def _node_and_images(node_id, image_id, *, lock: bool) -> tuple[Node, ImageSpec, ImageSpec, Command | None]:
    target = _as_uuid(image_id, "image")
    node, specs, command = node_with_images(_as_uuid(node_id, "node"), target, lock=lock)
    if node is None:
        raise NotFound(f"No node with id {node_id}.")
    if target not in specs:
        raise NotFound(f"No image with id {image_id}.")
    return node, specs[node.image_id], specs[target], command


def node_upgrade_plan(*, node_id, image_id, force: bool = False) -> UpgradeOutcome:
    """The dry run of node_upgrade: the same computation, nothing locked or written. Raises
    `not_found` for a missing node or image; any other refusal is returned in `error`."""
    node, old, new, command = _node_and_images(node_id, image_id, lock=False)
    return upgrade_outcome(node, old, new, command, force=force)


def command_side(*, image_id, properties, allocation: Resources) -> dict:
    """One side (`from` or `to`) of an upgrade command's payload."""
    return {"image_id": str(image_id), "properties": properties, "allocation": allocation.as_dict()}


def _upgrade_payload(outcome: UpgradeOutcome, node: Node) -> dict:
    """`from`: what the host runs — the superseded pending command's `from` (the host never
    started it), else the node as recorded before this upgrade; `to`: the new side."""
    if outcome.superseded is not None and "from" in (outcome.superseded.payload or {}):
        origin = outcome.superseded.payload["from"]
    else:
        origin = command_side(image_id=outcome.from_image.id, properties=node.properties, allocation=outcome.old)
    to = command_side(image_id=outcome.to_image.id, properties=outcome.config, allocation=outcome.new)
    return {"from": origin, "to": to}


def _write_upgrade(outcome: UpgradeOutcome, node: Node, *, actor, source, force) -> bool:
    """Writes an upgrade computed under the node's and host's locks: the node's pending command
    superseded (if any), the counters' deltas, the node, NodeLog `upgrade_started` and the new
    Command — on PostgreSQL in ONE statement (config.db.statements.write_together). False, and
    nothing written, when the command to supersede is no longer pending (the caller reads again)."""
    payload = _upgrade_payload(outcome, node)
    node_state_transition(node, NodeState.UPGRADING)
    host = node.host
    guard = None
    if outcome.superseded is not None:
        command_status_transition(outcome.superseded, CommandStatus.SUPERSEDED)
        closed = {"status": CommandStatus.SUPERSEDED, "finished_at": timezone.now()}
        guard = (Command, outcome.superseded.pk, closed, {"status": CommandStatus.PENDING})
    increments = host_counters_increments(host=host, check=outcome.counters)
    changes = {
        "image_id": outcome.to_image.id,
        "properties": outcome.config,
        "state": NodeState.UPGRADING,
        "updated_at": timezone.now(),
        **outcome.new.as_dict(),
    }
    log = node_event_values(
        NodeEvent.UPGRADE_STARTED,
        node,
        host,
        actor=actor,
        source=source,
        old_image_id=outcome.from_image.id,
        new_image_id=outcome.to_image.id,
        forced=_forced(outcome.counters, force),
        force_requested=force,
        warnings=outcome.warnings,
        **allocation_fields("old_", outcome.old),
        **allocation_fields("new_", outcome.new),
    )
    written = write_together(
        guard=guard,
        add=(Host, host.pk, increments) if increments else None,
        update=(Node, node.pk, changes),
        inserts=[(NodeLog, log), (Command, _command_values(CommandKind.NODE_UPGRADE, node, host, payload))],
    )
    if written:
        host_counters_written(host=host, check=outcome.counters)  # outcome.host: the same counters
        for name, value in changes.items():
            setattr(node, name, value)
    return written


@_refusals_logged("upgrade_refused", node="node_id", image="image_id")
def node_upgrade(*, node_id, image_id, force: bool = False, actor=None, source: str = Source.API) -> UpgradeOutcome:
    """Moves a node to another image of its protocol, carrying its config over (§2).

    Counters change by new - old allocation, where old is the node's recorded allocation (what
    the counters hold for it). The node becomes `upgrading`; NodeLog `upgrade_started` and a
    `node_upgrade` Command (payload `from` and `to`, §1) are written with it. The node's
    `pending` upgrade command is superseded (the new `from` is its `from`); an `acked` one, or
    an open `node_create`, refuses the upgrade with `node_busy`.

    Statements: the locked read (nodes.locks) and one write (_write_upgrade), besides BEGIN and
    COMMIT, on PostgreSQL; tests/nodes/changes/test_statement_budget.py holds it to that."""

    def work() -> UpgradeOutcome:
        # A `pending` command read here may have changed: superseded by an upgrade this one waited
        # for (a stale read), or acked since (an ack takes no node lock). The write's guard (its
        # conditional supersede) then fails, nothing is written, and the node is read again under
        # the lock already held. Each retry follows a change that happens once, so the third read
        # is final.
        for _read in range(3):
            with timed(LOCK_WAIT_SECONDS):
                node, old, new, command = _node_and_images(node_id, image_id, lock=True)  # node, then host
            outcome = upgrade_outcome(node, old, new, command, force=force)
            if outcome.error:
                raise outcome.error
            if _write_upgrade(outcome, node, actor=actor, source=source, force=force):
                break
        else:
            raise Busy("The node's command kept changing while it was read; try again.")
        for warning in outcome.warnings:
            log_event(logger, "node_config_warning", logging.WARNING, node=node.name, warning=warning)
        transaction.on_commit(lambda: _log_upgrade(outcome, actor=actor, source=source, force=force))
        return outcome

    began = time.perf_counter()
    try:
        outcome = atomic_with_retry(work)
    except ApplicationError as error:
        UPGRADES.labels(outcome=error.code).inc()
        raise
    finally:
        UPGRADE_SECONDS.observe(time.perf_counter() - began)
    UPGRADES.labels(outcome="ok").inc()
    return outcome


def _log_upgrade(outcome: UpgradeOutcome, *, actor, source, force):
    log_event(
        logger,
        "node_upgraded",
        node=outcome.node.name,
        host=outcome.host.name,
        from_image=outcome.from_image.label,
        to_image=outcome.to_image.label,
        old=outcome.old.as_dict(),
        new=outcome.new.as_dict(),
        delta=outcome.delta.as_dict(),
        forced=_forced(outcome.counters, force),
        force_requested=force,
        actor=_actor_name(actor),
        source=source,
    )
