"""Services that change nodes: node_create, node_upgrade (and its dry run, node_upgrade_plan),
node_delete.

The invariant each keeps: at every commit, a host's counters equal the COUNT and SUMs of its
nodes' allocations. Each runs in one transaction that holds the host's row lock (hosts.locks)
while the counters change by deltas added in SQL (hosts.counters), and writes the node, the counters,
the NodeLog entry and the Command together, or nothing.
"""

import copy
import functools
import logging
import time
import uuid
from dataclasses import dataclass, field, replace

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from config.db import atomic_with_retry
from config.errors import (
    AlreadyOnImage,
    ApplicationError,
    Busy,
    CounterDrift,
    IncompatibleImage,
    InsufficientCapacity,
    InvalidImageConfig,
    InvalidInput,
    NodeBusy,
    NotFound,
    ResourceOverflow,
)
from config.logging import log_event
from config.metrics import LOCK_WAIT_SECONDS, UPGRADE_SECONDS, UPGRADES, timed
from config.statements import insert_row, write_together
from config.text import printable_error
from config.units import BIGINT_MAX
from hosts.capacity import refuse_unavailable
from hosts.counters import (
    CounterCheck,
    host_counters_apply,
    host_counters_check,
    host_counters_increments,
    host_counters_write,
    host_counters_written,
)
from hosts.locks import lock_host, lock_with_host
from hosts.models import Host, Source
from hosts.placement import Requirement, place, requirement_check
from nodes.locks import node_with_images, share_image
from nodes.models import (
    OPEN_STATUSES,
    Command,
    CommandKind,
    CommandStatus,
    Image,
    Node,
    NodeEvent,
    NodeLog,
    NodeState,
    command_status_transition,
    node_state_transition,
)
from nodes.resources import ImageSpec, PropertySpec, Resources, carry_over, full_config, required_allocation
from nodes.rollouts.hooks import rollout_node_deleted

logger = logging.getLogger("nodes.services")

NAME_MAX_LENGTH = Node._meta.get_field("name").max_length


def image_spec(image: Image) -> ImageSpec:
    """The pure view of an image (its `properties` prefetched or fetched here)."""
    return ImageSpec(
        id=image.pk,
        protocol=image.protocol,
        version=image.version,
        minimum=Resources.from_mapping(vars(image), prefix="min_"),
        properties=tuple(
            PropertySpec(prop.key, prop.default_value, Resources.from_mapping(vars(prop), prefix="add_"))
            for prop in image.properties.all()
        ),
    )


def _as_uuid(value, what: str) -> uuid.UUID:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        raise NotFound(f"No {what} with id {value!r}.") from None


def _image(image_id) -> ImageSpec:
    """The image a node is placed on, its row shared-locked first (nodes.locks.share_image)."""
    pk = _as_uuid(image_id, "image")
    share_image(pk)
    try:
        return image_spec(Image.objects.prefetch_related("properties").get(pk=pk))
    except Image.DoesNotExist:
        raise NotFound(f"No image with id {image_id}.") from None


def _lock_node(node_id) -> Node:
    try:
        return lock_with_host(Node.objects, _as_uuid(node_id, "node"))
    except Node.DoesNotExist:
        raise NotFound(f"No node with id {node_id}.") from None


def log_node_event(event: str, node: Node, host: Host, **fields) -> None:
    """Writes a NodeLog entry; node_event_values names its fields."""
    insert_row(NodeLog, **node_event_values(event, node, host, **fields))


def node_event_values(
    event: str,
    node: Node,
    host: Host,
    *,
    actor,
    source,
    forced: bool = False,
    force_requested: bool = False,
    warnings=(),
    **fields,
) -> dict:
    """The field values of a NodeLog entry."""
    return dict(
        event=event,
        node_id=node.pk,
        node_name=node.name,
        host_id=host.pk,
        host_name=host.name,
        actor_id=actor.pk if actor is not None and actor.is_authenticated else None,
        source=source,
        forced=forced,
        force_requested=force_requested,
        warnings=list(warnings),
        created_at=timezone.now(),
        **fields,
    )


def _close_open_commands(node: Node) -> None:
    """Closes the node's open commands as `superseded` (before a new one opens: one open per node).
    Every open status may become `superseded` (COMMAND_TRANSITIONS); the caller holds the node's
    lock, and an ack racing this waits for the command's row and then finds it closed."""
    Command.objects.filter(node_id=node.pk, status__in=OPEN_STATUSES).update(
        status=CommandStatus.SUPERSEDED, finished_at=timezone.now()
    )


def _command(kind: str, node: Node, host: Host, payload: dict) -> None:
    insert_row(Command, **_command_values(kind, node, host, payload))


def _command_values(kind: str, node: Node, host: Host, payload: dict) -> dict:
    return dict(host_id=host.pk, node_id=node.pk, kind=kind, payload=payload, created_at=timezone.now())


def allocation_fields(prefix: str, amounts: Resources) -> dict[str, int]:
    return {prefix + name: amount for name, amount in amounts.items()}


def _forced(check: CounterCheck, force: bool) -> bool:
    """Whether `force` was needed: some resource that grows went past the host's capacity."""
    return force and not check.fits_all


def _refusals_logged(event: str, **fields: str):
    """Decorates a service so that each refusal (ApplicationError) logs one line `event` with
    the error's code and detail; `fields` name a log field after the keyword argument it shows."""

    def decorate(service):
        @functools.wraps(service)
        def logged(**kwargs):
            try:
                return service(**kwargs)
            except ApplicationError as error:
                log_event(
                    logger,
                    event,
                    **{name: str(kwargs.get(argument)) for name, argument in fields.items()},
                    code=error.code,
                    detail=error.detail,
                    actor=_actor_name(kwargs.get("actor")),
                    source=kwargs.get("source", Source.API),
                )
                raise

        return logged

    return decorate


# ---------------------------------------------------------------------------------------------
# Upgrade


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


def _upgrade_outcome(node: Node, old: ImageSpec, new: ImageSpec, command, *, force: bool) -> UpgradeOutcome:
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
    return _upgrade_outcome(node, old, new, command, force=force)


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
    Command — on PostgreSQL in ONE statement (config.statements.write_together). False, and
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
    COMMIT, on PostgreSQL; tests/nodes/test_statement_budget.py holds it to that."""

    def work() -> UpgradeOutcome:
        # A `pending` command read here may have changed: superseded by an upgrade this one waited
        # for (a stale read), or acked since (an ack takes no node lock). The write's guard (its
        # conditional supersede) then fails, nothing is written, and the node is read again under
        # the lock already held. Each retry follows a change that happens once, so the third read
        # is final.
        for _read in range(3):
            with timed(LOCK_WAIT_SECONDS):
                node, old, new, command = _node_and_images(node_id, image_id, lock=True)  # node, then host
            outcome = _upgrade_outcome(node, old, new, command, force=force)
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


def _actor_name(actor) -> str | None:
    return actor.get_username() if actor is not None and actor.is_authenticated else None


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


# ---------------------------------------------------------------------------------------------
# Create and delete


def _validate_create_input(name, properties) -> dict[str, str]:
    errors = {}
    if not isinstance(name, str) or not name.strip():
        errors["name"] = ["A node needs a non-empty name."]
    elif len(name) > NAME_MAX_LENGTH:
        errors["name"] = [f"At most {NAME_MAX_LENGTH} characters."]
    elif unprintable := printable_error(name):
        errors["name"] = [unprintable]
    if properties is None:
        properties = {}
    if not isinstance(properties, dict):
        errors["properties"] = ["Must be an object mapping property keys to string values."]
    else:
        bad = sorted(str(key) for key, value in properties.items() if not isinstance(value, str))
        limit = settings.NODE_PROPERTY_VALUE_MAX_LENGTH
        too_long = sorted(key for key, value in properties.items() if isinstance(value, str) and len(value) > limit)
        if bad:
            errors["properties"] = [f"Values must be strings: {', '.join(bad)}."]
        elif too_long:
            errors["properties"] = [f"Values may hold at most {limit} characters: {', '.join(too_long)}."]
    if errors:
        raise InvalidInput("The node cannot be created from this input.", errors=errors)
    return properties


def _refuse_unknown_keys(spec: ImageSpec, properties: dict) -> None:
    unknown = sorted(set(properties) - spec.defaults().keys())
    if unknown:
        raise InvalidInput(
            f"Image {spec.label} has no propert{'y' if len(unknown) == 1 else 'ies'} {', '.join(unknown)}.",
            errors={"properties": [f"Unknown key for {spec.label}: {key}." for key in unknown]},
        )


def node_requirement(spec: ImageSpec, properties: dict, *, what: str = "A node") -> tuple[dict[str, str], Resources]:
    """A new node's full config and required allocation on an image (§2), refusing keys the
    image lacks (`invalid`), invalid requirements and allocations past 64 bits."""
    _refuse_unknown_keys(spec, properties)
    config = full_config(spec, properties)
    allocation = required_allocation(spec.validate(), config).check_within_bigint(f"{what} on {spec.label}")
    return config, allocation


def _placement_input(host_id, placement, force) -> Requirement | None:
    """The placement a create without a host asks for (None: the host is named)."""
    if host_id is not None:
        if placement is not None:
            raise InvalidInput(
                "Name a host or ask for a placement, not both.",
                errors={"placement": ["Not allowed together with host_id."]},
            )
        return None
    if force:
        raise InvalidInput(
            "force places past a named host's capacity; a placement never does. Name the host to force.",
            errors={"force": ["Only allowed together with host_id."]},
        )
    return requirement_check(requested={}, placement=placement)


def _name_taken(name: str) -> InvalidInput:
    return InvalidInput(
        f"A node named {name} already exists.", errors={"name": ["A node with this name already exists."]}
    )


@dataclass(frozen=True)
class NodeChange:
    """A created or deleted node and its host's counters after the change."""

    node: Node
    host: Host


@_refusals_logged("create_refused", node="name", host="host_id", image="image_id")
def node_create(
    *,
    name: str,
    host_id=None,
    image_id,
    properties: dict | None = None,
    force: bool = False,
    auto_upgrade: bool = False,
    placement: dict | None = None,
    actor=None,
    source: str = Source.API,
) -> NodeChange:
    """Places a new node on a host, `creating` until its agent reports (§9): allocation from its
    config on the image, capacity checked (unless force), counters += allocation and node_count
    + 1, NodeLog `created`, Command `node_create`. Properties must be keys of the image; missing
    keys take its defaults. `auto_upgrade`: the node follows newer images of its protocol (§10).

    Without `host_id`, hosts.placement chooses the host (§11) by `placement` ({strategy, region,
    spread_protocol}) and returns it locked with the fit re-checked; the image is read (FOR KEY
    SHARE) before any host is locked. `host_id` with `placement`, or `force` without `host_id`,
    is `invalid`."""
    properties = _validate_create_input(name, properties)
    requirement = _placement_input(host_id, placement, force)

    def work() -> NodeChange:
        if requirement is None:
            try:
                host = lock_host(_as_uuid(host_id, "host"))
            except Host.DoesNotExist:
                raise NotFound(f"No host with id {host_id}.") from None
        spec = _image(image_id)
        _refuse_unknown_keys(spec, properties)
        if Node.objects.filter(name=name).exists():
            raise _name_taken(name)
        config, allocation = node_requirement(spec, properties, what=f"Node {name}")
        if requirement is not None:
            host = place(replace(requirement, requested=allocation.as_dict(), protocol=spec.protocol))
        check = host_counters_check(host=host, delta=allocation, node_count_delta=1, force=force)
        if not isinstance(check.error, CounterDrift | ResourceOverflow):
            refuse_unavailable(host)  # after input, image and overflow, before capacity (§11)
        host = host_counters_write(host=host, check=check)
        forced = _forced(check, force)
        node = Node.objects.create(
            name=name,
            host=host,
            image_id=spec.id,
            properties=config,
            state=NodeState.CREATING,
            auto_upgrade=auto_upgrade,
            **allocation.as_dict(),
        )
        log_node_event(
            NodeEvent.CREATED,
            node,
            host,
            actor=actor,
            source=source,
            new_image_id=spec.id,
            forced=forced,
            force_requested=force,
            **allocation_fields("new_", allocation),
        )
        _command(CommandKind.NODE_CREATE, node, host, {"image_id": str(spec.id), "properties": config})
        transaction.on_commit(
            lambda: log_event(
                logger,
                "node_created",
                node=name,
                host=host.name,
                image=spec.label,
                allocation=allocation.as_dict(),
                forced=forced,
                force_requested=force,
                actor=_actor_name(actor),
                source=source,
            )
        )
        return NodeChange(node=node, host=host)

    try:
        return atomic_with_retry(work)
    except IntegrityError:  # a concurrent create took the name between our check and insert
        raise _name_taken(name) from None


@_refusals_logged("delete_refused", node="node_id")
def node_delete(*, node_id, actor=None, source: str = Source.API) -> NodeChange:
    """Removes a node, whatever its state: counters -= its allocation and node_count - 1 (refused
    with `counter_drift` if one would go below zero), its open commands close as `superseded`,
    NodeLog `deleted`, Command `node_delete` (payload: the node's name and image)."""

    def work() -> NodeChange:
        node = _lock_node(node_id)
        allocation = Resources.of(node)
        host = host_counters_apply(host=node.host, delta=Resources() - allocation, node_count_delta=-1)
        Node.objects.filter(pk=node.pk).delete()
        log_node_event(
            NodeEvent.DELETED,
            node,
            host,
            actor=actor,
            source=source,
            old_image_id=node.image_id,
            **allocation_fields("old_", allocation),
        )
        _close_open_commands(node)
        _command(CommandKind.NODE_DELETE, node, host, {"name": node.name, "image_id": str(node.image_id)})
        rollout_node_deleted(node_id=node.pk)
        transaction.on_commit(
            lambda: log_event(
                logger,
                "node_deleted",
                node=node.name,
                host=host.name,
                allocation=allocation.as_dict(),
                actor=_actor_name(actor),
                source=source,
            )
        )
        return NodeChange(node=node, host=host)

    return atomic_with_retry(work)
