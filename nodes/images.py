"""Adding an image: image_create, the one path of the API and `manage.py add_image` (§1, §10).

The invariant it keeps: an image is written with all its properties, and the auto-upgrade
rollout it implies (if any), in one transaction — or nothing is."""

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from django.db import IntegrityError, transaction

from config.db import atomic_with_retry
from config.errors import InvalidInput
from config.http.logging import log_event
from config.text import printable_error
from config.units import BIGINT_MAX, RESOURCES
from hosts.models import Source
from nodes.models import Image, ImageProperty
from nodes.rollouts.auto import rollout_auto_create
from nodes.rollouts.models import Rollout

logger = logging.getLogger(__name__)

_max_length = {name: Image._meta.get_field(name).max_length for name in ("protocol", "version")}
KEY_MAX_LENGTH = ImageProperty._meta.get_field("key").max_length
DEFAULT_MAX_LENGTH = ImageProperty._meta.get_field("default_value").max_length
PROPERTY_FIELDS = {"key", "default_value", *(f"add_{name}" for name in RESOURCES)}


@dataclass(frozen=True)
class ImageCreated:
    """The added image and the auto-upgrade rollout it made (None: no auto_upgrade node was older)."""

    image: Image
    rollout: Rollout | None


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text_error(value, *, max_length: int, blank: bool = False) -> str | None:
    if not isinstance(value, str):
        return "Must be a string."
    if not blank and not value.strip():
        return "May not be blank."
    if len(value) > max_length:
        return f"At most {max_length} characters."
    return printable_error(value)


def _property_errors(index: int, prop) -> list[str]:
    where = f"Property {index + 1}"
    if not isinstance(prop, Mapping):
        return [f"{where}: must be an object."]
    errors = [f"{where}: unknown field {name}." for name in sorted(set(prop) - PROPERTY_FIELDS)]
    if error := _text_error(prop.get("key"), max_length=KEY_MAX_LENGTH):
        errors.append(f"{where}: key: {error}")
    if error := _text_error(prop.get("default_value", ""), max_length=DEFAULT_MAX_LENGTH, blank=True):
        errors.append(f"{where}: default_value: {error}")
    for name in RESOURCES:
        add = prop.get(f"add_{name}")
        if add is not None and not (_is_int(add) and -BIGINT_MAX <= add <= BIGINT_MAX):
            errors.append(f"{where}: add_{name}: must be an integer from {-BIGINT_MAX} to {BIGINT_MAX}, or null.")
    return errors


def _validate(protocol, version, minimums: dict, properties: list) -> None:
    errors: dict[str, list[str]] = {}
    for name, value in (("protocol", protocol), ("version", version)):
        if error := _text_error(value, max_length=_max_length[name]):
            errors[name] = [error]
    for name, value in minimums.items():
        if not (_is_int(value) and 0 <= value <= BIGINT_MAX):
            errors[name] = [f"Must be an integer from 0 to {BIGINT_MAX}."]
    problems = [error for index, prop in enumerate(properties) for error in _property_errors(index, prop)]
    keys = [prop.get("key") for prop in properties if isinstance(prop, Mapping)]
    repeated = sorted({key for key in keys if isinstance(key, str) and keys.count(key) > 1})
    if repeated:
        problems.append(f"Keys must be unique: {', '.join(repeated)} repeated.")
    if problems:
        errors["properties"] = problems
    if errors:
        raise InvalidInput("The image cannot be added from this input.", errors=errors)


def _taken(protocol: str, version: str) -> InvalidInput:
    return InvalidInput(
        f"Image {protocol}@{version} already exists.",
        errors={"version": ["An image of this protocol with this version already exists."]},
    )


def image_create(
    *,
    protocol: str,
    version: str,
    min_cpu_cores: int = 0,
    min_memory_bytes: int = 0,
    min_disk_bytes: int = 0,
    properties: Iterable[Mapping] = (),
    actor=None,
    source: str = Source.API,
) -> ImageCreated:
    """Adds an image of `protocol` at `version` with its requirements and properties (each a
    mapping of key, default_value and optional add_cpu_cores, add_memory_bytes, add_disk_bytes),
    and, in the same transaction, the auto-upgrade rollout for the auto_upgrade nodes it is newer
    for (§10). The version need not parse as PEP 440 (as in the admin): such an image simply
    rolls out to nobody on its own. Refusals: `invalid` (bad input, or protocol@version taken)."""
    properties = list(properties)
    minimums = {"min_cpu_cores": min_cpu_cores, "min_memory_bytes": min_memory_bytes, "min_disk_bytes": min_disk_bytes}
    _validate(protocol, version, minimums, properties)

    def work() -> ImageCreated:
        if Image.objects.filter(protocol=protocol, version=version).exists():
            raise _taken(protocol, version)
        image = Image(protocol=protocol, version=version, **minimums)
        try:
            with transaction.atomic():  # a savepoint: the same version added at the same moment
                image.save()
        except IntegrityError:
            raise _taken(protocol, version) from None
        ImageProperty.objects.bulk_create(
            ImageProperty(
                image=image,
                key=prop["key"],
                default_value=prop.get("default_value", ""),
                **{f"add_{name}": prop.get(f"add_{name}") for name in RESOURCES},
            )
            for prop in properties
        )
        return ImageCreated(image=image, rollout=rollout_auto_create(image=image, actor=actor))

    created = atomic_with_retry(work)
    log_event(
        logger,
        "image_created",
        image=str(created.image),
        properties=len(properties),
        auto_rollout=str(created.rollout.pk) if created.rollout else None,
        actor=actor.get_username() if actor is not None and actor.is_authenticated else None,
        source=source,
    )
    return created
