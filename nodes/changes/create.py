"""node_create: a node placed on a named host, its image shared-locked, its host locked while the
counters grow by the node's allocation; node, counters, NodeLog and Command in one transaction."""

import logging

from django.conf import settings
from django.db import IntegrityError, transaction

from config.db import atomic_with_retry
from config.errors import InvalidInput, NotFound
from config.http.logging import log_event
from config.text import printable_error
from hosts.counters import host_counters_check, host_counters_write
from hosts.locks import lock_host
from hosts.models import Host, Source
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
from nodes.resources import full_config, required_allocation

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


def _name_taken(name: str) -> InvalidInput:
    return InvalidInput(
        f"A node named {name} already exists.", errors={"name": ["A node with this name already exists."]}
    )


@_refusals_logged("create_refused", node="name", host="host_id", image="image_id")
def node_create(
    *,
    name: str,
    host_id,
    image_id,
    properties: dict | None = None,
    force: bool = False,
    auto_upgrade: bool = False,
    actor=None,
    source: str = Source.API,
) -> NodeChange:
    """Places a new node on a host, `creating` until its agent reports (§9): allocation from its
    config on the image, capacity checked (unless force), counters += allocation and node_count
    + 1, NodeLog `created`, Command `node_create`. Properties must be keys of the image; missing
    keys take its defaults. `auto_upgrade`: the node follows newer images of its protocol (§10)."""
    properties = _validate_create_input(name, properties)

    def work() -> NodeChange:
        try:
            host = lock_host(_as_uuid(host_id, "host"))
        except Host.DoesNotExist:
            raise NotFound(f"No host with id {host_id}.") from None
        spec = _image(image_id)
        unknown = sorted(set(properties) - spec.defaults().keys())
        if unknown:
            raise InvalidInput(
                f"Image {spec.label} has no propert{'y' if len(unknown) == 1 else 'ies'} {', '.join(unknown)}.",
                errors={"properties": [f"Unknown key for {spec.label}: {key}." for key in unknown]},
            )
        if Node.objects.filter(name=name).exists():
            raise _name_taken(name)
        config = full_config(spec, properties)
        allocation = required_allocation(spec.validate(), config).check_within_bigint(f"Node {name} on {spec.label}")
        check = host_counters_check(host=host, delta=allocation, node_count_delta=1, force=force)
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
