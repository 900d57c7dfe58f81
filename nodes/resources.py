"""Resource arithmetic of §2, pure Python (no Django): a node's required allocation on an image,
the carry-over of its config to another image, and checks against the 64-bit limit.

Sums are exact Python integers; callers check them against BIGINT_MAX at the end, so an
intermediate value past the limit is never clamped nor mistaken for a valid one.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields

from config.errors import InvalidImageConfig, ResourceOverflow
from config.units import BIGINT_MAX, RESOURCES


@dataclass(frozen=True)
class Resources:
    """An amount of each resource (an allocation, a requirement, or a signed delta)."""

    cpu_cores: int = 0
    memory_bytes: int = 0
    disk_bytes: int = 0

    @classmethod
    def of(cls, obj) -> "Resources":
        """The amounts held by any object with the three attributes (a Node, a log row...)."""
        return cls(*(getattr(obj, name) for name in RESOURCES))

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, int | None], prefix: str = "") -> "Resources":
        """Reads `prefix + resource` keys; a missing or NULL amount counts as 0."""
        return cls(*((mapping.get(prefix + name) or 0) for name in RESOURCES))

    def __add__(self, other: "Resources") -> "Resources":
        return Resources(*(a + b for a, b in zip(self, other, strict=True)))

    def __sub__(self, other: "Resources") -> "Resources":
        return Resources(*(a - b for a, b in zip(self, other, strict=True)))

    def __iter__(self):
        return (getattr(self, f.name) for f in fields(self))

    def items(self) -> Iterable[tuple[str, int]]:
        return zip(RESOURCES, self, strict=True)

    def as_dict(self) -> dict[str, int]:
        return dict(self.items())

    def check_within_bigint(self, what: str) -> "Resources":
        """Refuses (`resource_overflow`) the first amount above 2**63-1; returns self."""
        for name, amount in self.items():
            if amount > BIGINT_MAX:
                raise ResourceOverflow(
                    f"{what}: {name} would be {amount}, beyond the limit of {BIGINT_MAX} (2**63-1).",
                    resource=name,
                )
        return self


@dataclass(frozen=True)
class PropertySpec:
    key: str
    default_value: str
    adds: Resources = Resources()


@dataclass(frozen=True)
class ImageSpec:
    """What the arithmetic needs of an image: its identity, minimums and properties."""

    id: object
    protocol: str
    version: str
    minimum: Resources
    properties: tuple[PropertySpec, ...] = field(default=())

    @property
    def label(self) -> str:
        return f"{self.protocol}@{self.version}"

    def defaults(self) -> dict[str, str]:
        return {prop.key: prop.default_value for prop in self.properties}

    def validate(self) -> "ImageSpec":
        """Refuses (`invalid_image_config`) minimums outside 0..2**63-1; returns self."""
        for name, amount in self.minimum.items():
            if not 0 <= amount <= BIGINT_MAX:
                raise InvalidImageConfig(
                    f"Image {self.label} has an invalid requirement: min_{name} = {amount} "
                    f"(must be between 0 and {BIGINT_MAX}). Fix the image before placing nodes on it."
                )
        return self


def required_allocation(image: ImageSpec, config: Mapping[str, str]) -> Resources:
    """max(min, min + sum of the adds of properties whose value differs from their default),
    per resource. Keys of `config` the image lacks add nothing. Not checked against 2**63-1."""
    adds = Resources()
    for prop in image.properties:
        if config.get(prop.key, prop.default_value) != prop.default_value:
            adds = adds + prop.adds
    raised = image.minimum + adds
    return Resources(*(max(low, value) for low, value in zip(image.minimum, raised, strict=True)))


def full_config(image: ImageSpec, overrides: Mapping[str, str]) -> dict[str, str]:
    """The image's every key, with the given values where present and defaults elsewhere."""
    return {prop.key: overrides.get(prop.key, prop.default_value) for prop in image.properties}


def usable_config(properties: object) -> tuple[dict[str, str], list[str]]:
    """The string-valued entries of a stored config, and a warning for whatever was unusable
    (config absent, not a JSON object, or holding non-string values)."""
    if properties is None:
        return {}, ["the node's config was missing; the new image's defaults were used"]
    if not isinstance(properties, dict):
        kind = type(properties).__name__
        return {}, [f"the node's config was not a JSON object ({kind}); the new image's defaults were used"]
    usable = {key: value for key, value in properties.items() if isinstance(value, str)}
    bad = sorted(key for key in properties if key not in usable)
    warnings = [f"config key {key!r} held a non-string value; the new image's default was used" for key in bad]
    return usable, warnings


def carry_over(properties: object, old: ImageSpec, new: ImageSpec) -> tuple[dict[str, str], list[str]]:
    """The node's config on the new image, and warnings about what could not be carried.

    Values that differ from the old image's defaults, or whose key the old image lacks, are kept
    for keys the new image has; every other key takes the new image's default."""
    usable, warnings = usable_config(properties)
    old_defaults = old.defaults()
    chosen = {key: value for key, value in usable.items() if key not in old_defaults or value != old_defaults[key]}
    return full_config(new, chosen), warnings
