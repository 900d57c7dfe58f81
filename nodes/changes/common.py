"""What create, upgrade and delete share: the pure view of an image, the node and image reads
they lock, the NodeLog and Command writes, and the refusal log lines (logger "nodes.services")."""

import functools
import logging
import uuid
from dataclasses import dataclass

from django.utils import timezone

from config.db.statements import insert_row
from config.errors import ApplicationError, NotFound
from config.http.logging import log_event
from hosts.counters import CounterCheck
from hosts.locks import lock_with_host
from hosts.models import Host, Source
from nodes.locks import share_image
from nodes.models import OPEN_STATUSES, Command, CommandStatus, Image, Node, NodeLog
from nodes.resources import ImageSpec, PropertySpec, Resources

logger = logging.getLogger("nodes.services")  # the services' log lines keep their name

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


def _actor_name(actor) -> str | None:
    return actor.get_username() if actor is not None and actor.is_authenticated else None


@dataclass(frozen=True)
class NodeChange:
    """A created or deleted node and its host's counters after the change."""

    node: Node
    host: Host
