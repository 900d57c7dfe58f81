"""Writing a host (§11): host_create and host_update, behind the API and the admin's host form.

An update takes the host's row lock (hosts.locks), so a change of capacity, reserve, ratios
or slots serialises with the node changes of §3, which read allocatable under the same lock.
It is allowed even when it leaves the host over-allocated (the machine is what it is): the
result names each dimension now over, and a WARNING log line does too. Counters are never
input; nodes are never touched here.
"""

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from config.db import atomic_with_retry
from config.errors import InvalidInput, NotFound
from config.http.logging import log_event
from config.text import printable_error
from config.units import BIGINT_MAX
from hosts.capacity import RATIO, over_allocated
from hosts.locks import lock_host
from hosts.models import CAPACITY_MODEL_FIELDS, HOST_INPUT_FIELDS, RATIO_MAX, Host, Scheduling, Source

logger = logging.getLogger("hosts.services")

_REQUIRED_ON_CREATE = ("name", "cpu_cores", "memory_bytes", "disk_bytes")
_INTEGERS = tuple(name for name in HOST_INPUT_FIELDS if name not in ("name", "region", "scheduling", *RATIO.values()))


@dataclass(frozen=True)
class HostWrite:
    """A host as written, and the dimensions it is now over (`over_allocated`, §11)."""

    host: Host
    over_allocated: list[str]
    changed: list[str]


def ratio_value(value) -> Decimal:
    """An allocation ratio from a JSON string or number, with at most 4 decimal places, in
    (0, 1000]; ValueError with the reason otherwise."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise ValueError("A decimal number (a JSON string or number).")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError('A decimal number, e.g. "1.5".') from None
    if not number.is_finite():
        raise ValueError("A finite decimal number.")
    if number.as_tuple().exponent < -4 and number != number.quantize(Decimal("0.0001")):
        raise ValueError("At most 4 decimal places.")
    if not Decimal(0) < number <= RATIO_MAX:
        raise ValueError("Above 0 and at most 1000.")
    return number.quantize(Decimal("0.0001"))


def _checked(values: Mapping, *, creating: bool) -> dict:
    """The input checked field by field: `invalid` with every field's messages."""
    errors: dict[str, list[str]] = {}
    unknown = sorted(set(values) - set(HOST_INPUT_FIELDS))
    for name in unknown:
        errors[name] = ["Unknown field, or not writable (counters are never input)."]
    cleaned = {}
    for name, value in values.items():
        if name in unknown:
            continue
        if name in _INTEGERS:
            if value is None and name == "max_nodes":
                cleaned[name] = None
            elif isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= BIGINT_MAX:
                errors[name] = [f"An integer from 0 to {BIGINT_MAX}" + (", or null." if name == "max_nodes" else ".")]
            else:
                cleaned[name] = value
        elif name in RATIO.values():
            try:
                cleaned[name] = ratio_value(value)
            except ValueError as error:
                errors[name] = [str(error)]
        elif name == "scheduling":
            if value not in Scheduling.values:
                errors[name] = [f"One of {', '.join(Scheduling.values)}."]
            else:
                cleaned[name] = value
        else:  # name, region
            limit = Host._meta.get_field(name).max_length
            if not isinstance(value, str) or (name == "name" and not value.strip()):
                errors[name] = ["A non-empty string." if name == "name" else "A string (empty: no region)."]
            elif len(value) > limit:
                errors[name] = [f"At most {limit} characters."]
            elif unprintable := printable_error(value):
                errors[name] = [unprintable]
            else:
                cleaned[name] = value
    if creating:
        for name in _REQUIRED_ON_CREATE:
            if name not in values:
                errors.setdefault(name, ["This field is required."])
    if errors:
        raise InvalidInput("The host cannot be saved from this input.", errors=errors)
    return cleaned


def _name_taken(name) -> InvalidInput:
    return InvalidInput(
        f"A host named {name} already exists.", errors={"name": ["A host with this name already exists."]}
    )


def _result(host: Host, changed: list[str], *, actor, source, created: bool) -> HostWrite:
    over = over_allocated(host)
    log_event(
        logger,
        "host_created" if created else "host_changed",
        host=host.name,
        changed=changed,
        actor=actor.get_username() if actor is not None and actor.is_authenticated else None,
        source=source,
    )
    if over and (created or set(changed) & set(CAPACITY_MODEL_FIELDS)):
        log_event(
            logger,
            "host_over_allocated",
            logging.WARNING,
            host=host.name,
            over=over,
            **{f"used_{name}": value for name, value in host.counters().items()},
            **{f"allocatable_{name}": value for name, value in host.allocatable().items()},
            max_nodes=host.max_nodes,
        )
    return HostWrite(host=host, over_allocated=over, changed=changed)


def host_create(*, values: Mapping, actor=None, source: str = Source.API) -> HostWrite:
    """A new host from name, capacity and, optionally, reserve, ratios, slots, region and
    scheduling (defaults: nothing reserved, ratios 1, no slot limit, no region, automatic)."""
    cleaned = _checked(values, creating=True)

    def work() -> HostWrite:
        host = Host(**cleaned)
        try:
            with transaction.atomic():
                host.save(force_insert=True)  # RETURNING gives allocatable_* back
        except IntegrityError:
            if Host.objects.filter(name=cleaned["name"]).exists():
                raise _name_taken(cleaned["name"]) from None
            raise
        return _result(host, sorted(cleaned), actor=actor, source=source, created=True)

    return atomic_with_retry(work)


def host_update(*, host_id, values: Mapping, actor=None, source: str = Source.API) -> HostWrite:
    """Changes the given fields of a host under its row lock (only those: the counters are
    never written back). Allowed when the host ends over-allocated; the result says where."""
    cleaned = _checked(values, creating=False)

    def work() -> HostWrite:
        try:
            host = lock_host(host_id)
        except (Host.DoesNotExist, ValidationError, ValueError):
            raise NotFound(f"No host with id {host_id}.") from None
        changed = sorted(name for name, value in cleaned.items() if getattr(host, name) != value)
        if changed:
            for name in changed:
                setattr(host, name, cleaned[name])
            try:
                with transaction.atomic():
                    host.save(update_fields=changed)
            except IntegrityError:
                raise _name_taken(cleaned.get("name")) from None
            host.refresh_from_db(fields=[f"allocatable_{name}" for name in ("cpu_cores", "memory_bytes", "disk_bytes")])
        return _result(host, changed, actor=actor, source=source, created=False)

    return atomic_with_retry(work)
