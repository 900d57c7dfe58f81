"""node_create: a node placed on a named host or on the host placement chooses (§11), its image
shared-locked, its host locked while the counters grow by the node's allocation; node, counters,
NodeLog and Command in one transaction."""

import logging
from dataclasses import replace

from django.conf import settings
from django.db import IntegrityError, transaction

from config.db import atomic_with_retry
from config.errors import CounterDrift, InvalidInput, NotFound, ResourceOverflow
from config.http.logging import log_event
from config.text import printable_error
from hosts.capacity import refuse_unavailable
from hosts.counters import host_counters_check, host_counters_write
from hosts.locks import lock_host
from hosts.models import Host, Source
from hosts.placement import Requirement, place, requirement_check
from nodes.changes.common import (
    NAME_MAX_LENGTH,
    NodeChange,
    _actor_name,
    _as_uuid,
    _command,
    _forced,
    _image,
    _refusals_logged,
    allocation_fields,
    log_node_event,
)
from nodes.models import CommandKind, Node, NodeEvent, NodeState
from nodes.resources import ImageSpec, Resources, full_config, required_allocation

logger = logging.getLogger("nodes.services")  # the services' log lines keep their name


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
    is `invalid`. A named `draining` host refuses (`host_unavailable`), forced or not, after the
    input, image and overflow checks and before capacity."""
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
