"""Serializers of the REST API: strict input (types exactly as JSON sends them, unknown fields
refused) and the representations of hosts, images, nodes and upgrades (§1 names, exact ints)."""

import copy
from collections.abc import Mapping

from django.db import models
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from config.http.openapi import Problem
from config.units import BIGINT_MAX, RESOURCES
from hosts.capacity import ALLOCATABLE, RATIO, RESERVED, free
from hosts.models import COUNTER_OF_RESOURCE, Host, Scheduling
from nodes.models import Image, ImageProperty, Node

# ---------------------------------------------------------------------------------------------
# Strict input fields: DRF's own coerce ("1" -> True, 5 -> UUID(int=5), 5 -> "5"); these do not.


class StrictUUIDField(serializers.UUIDField):
    """A UUID given as a JSON string, nothing else (DRF's UUIDField also takes integers)."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """JSON `true` or `false` only (DRF's BooleanField also takes "yes", 1, "on"...)."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


def _refuse_unencodable(value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise serializers.ValidationError("Must be valid Unicode text (no lone surrogates).") from None


class StrictCharField(serializers.CharField):
    """A JSON string, kept as sent (no trimming); no NUL character, no lone surrogate. Unless
    allow_blank, at least one character, which the schema says (`minLength: 1`)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("trim_whitespace", False)
        if not kwargs.get("allow_blank", False):
            kwargs.setdefault("min_length", 1)
        super().__init__(**kwargs)
        self.validators.append(_refuse_unencodable)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer, nothing else (DRF's IntegerField also takes "5", 5.0 and true)."""

    def to_internal_value(self, data):
        if not isinstance(data, int) or isinstance(data, bool):
            self.fail("invalid")
        return super().to_internal_value(data)


class PropertiesField(serializers.DictField):
    """A node's config: an object of string values whose keys are plain text."""

    child = StrictCharField(allow_blank=True)

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            for key in data:
                if "\x00" in key:
                    raise serializers.ValidationError("Keys may not contain NUL characters.")
                _refuse_unencodable(key)
        return super().to_internal_value(data)


class StrictInputSerializer(serializers.Serializer):
    """Refuses a field it does not declare, besides the errors of the fields it does."""

    def to_internal_value(self, data):
        unknown = sorted(set(data) - set(self.fields)) if isinstance(data, Mapping) else []
        errors = {key: ["Unknown field."] for key in unknown}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as error:
            raise serializers.ValidationError({**errors, **error.detail}) from None
        if errors:
            raise serializers.ValidationError(errors)
        return value


class StrictChoiceField(serializers.ChoiceField):
    """One of the choices, given as a JSON string."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid_choice", input=data)
        return super().to_internal_value(data)


class PlacementInputSerializer(StrictInputSerializer):
    """How placement chooses a host (§11) when the create names none."""

    strategy = StrictChoiceField(
        choices=["binpack", "spread"],
        required=False,
        default="binpack",
        help_text="binpack: the fullest host that fits; spread: the emptiest.",
    )
    region = StrictCharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        default=None,
        max_length=Host._meta.get_field("region").max_length,
        help_text='Hosts of this region only; "" hosts without a region; null (default) any region.',
    )
    spread_protocol = StrictBooleanField(
        required=False, default=False, help_text="Prefer hosts with fewer nodes of the image's protocol first."
    )


class NodeCreateSerializer(StrictInputSerializer):
    name = StrictCharField(max_length=Node._meta.get_field("name").max_length)
    host_id = StrictUUIDField(
        required=False,
        allow_null=True,
        default=None,
        help_text="The host to place the node on; omitted or null: placement chooses one (§11).",
    )
    image_id = StrictUUIDField()
    placement = PlacementInputSerializer(
        required=False, allow_null=True, default=None, help_text="Only without host_id: how to choose the host."
    )
    properties = PropertiesField(
        required=False,
        help_text="Property values (strings) by key; keys must exist on the image. Missing keys "
        "take the image's defaults.",
    )
    force = StrictBooleanField(
        required=False, default=False, help_text="Place past the host's capacity (needs hosts.overcommit_host)."
    )
    auto_upgrade = StrictBooleanField(
        required=False, default=False, help_text="Follow newer images of the protocol (same major) by rollouts."
    )

    def validate(self, data):
        if data.get("host_id") is not None and data.get("placement") is not None:
            raise serializers.ValidationError({"placement": ["Not allowed together with host_id."]})
        if data.get("host_id") is None and data.get("force"):
            raise serializers.ValidationError({"force": ["Only allowed together with host_id."]})
        return data


class PlacementPlanInputSerializer(StrictInputSerializer):
    image_id = StrictUUIDField()
    properties = PropertiesField(
        required=False, help_text="Property values (strings) by key, as for a create; missing keys take defaults."
    )
    placement = PlacementInputSerializer(required=False, allow_null=True, default=None)
    count = StrictIntegerField(required=False, default=1, min_value=1, max_value=1000, help_text="Nodes to place.")


@extend_schema_field({"oneOf": [{"type": "string", "pattern": r"^\d{1,4}(\.\d{1,4})?$"}, {"type": "number"}]})
class RatioField(serializers.Field):
    """An allocation ratio: a JSON string or number with at most 4 decimal places, in (0, 1000]."""

    def to_internal_value(self, data):
        from hosts.services import ratio_value

        try:
            return ratio_value(data)
        except ValueError as error:
            raise serializers.ValidationError(str(error)) from None


class HostWriteSerializer(StrictInputSerializer):
    """A host's writable fields (§11); counters are never input."""

    name = StrictCharField(max_length=Host._meta.get_field("name").max_length)
    cpu_cores = StrictIntegerField(min_value=0, max_value=BIGINT_MAX)
    memory_bytes = StrictIntegerField(min_value=0, max_value=BIGINT_MAX)
    disk_bytes = StrictIntegerField(min_value=0, max_value=BIGINT_MAX)
    reserved_cpu_cores = StrictIntegerField(required=False, min_value=0, max_value=BIGINT_MAX)
    reserved_memory_bytes = StrictIntegerField(required=False, min_value=0, max_value=BIGINT_MAX)
    reserved_disk_bytes = StrictIntegerField(required=False, min_value=0, max_value=BIGINT_MAX)
    cpu_allocation_ratio = RatioField(required=False, help_text='e.g. "1.5" (4 decimal places at most)')
    memory_allocation_ratio = RatioField(required=False)
    disk_allocation_ratio = RatioField(required=False)
    max_nodes = StrictIntegerField(
        required=False, allow_null=True, min_value=0, max_value=BIGINT_MAX, help_text="Node slots; null: no limit."
    )
    region = StrictCharField(required=False, allow_blank=True, max_length=Host._meta.get_field("region").max_length)
    scheduling = StrictChoiceField(choices=Scheduling.choices, required=False)


class ImagePropertyCreateSerializer(StrictInputSerializer):
    key = StrictCharField(max_length=ImageProperty._meta.get_field("key").max_length)
    default_value = StrictCharField(
        max_length=ImageProperty._meta.get_field("default_value").max_length, allow_blank=True
    )
    add_cpu_cores = StrictIntegerField(required=False, allow_null=True, min_value=-BIGINT_MAX, max_value=BIGINT_MAX)
    add_memory_bytes = StrictIntegerField(required=False, allow_null=True, min_value=-BIGINT_MAX, max_value=BIGINT_MAX)
    add_disk_bytes = StrictIntegerField(required=False, allow_null=True, min_value=-BIGINT_MAX, max_value=BIGINT_MAX)


class ImageCreateSerializer(StrictInputSerializer):
    protocol = StrictCharField(max_length=Image._meta.get_field("protocol").max_length)
    version = StrictCharField(
        max_length=Image._meta.get_field("version").max_length,
        help_text="Any text; a PEP 440 version newer than auto_upgrade nodes' (same major) rolls out to them.",
    )
    min_cpu_cores = StrictIntegerField(required=False, default=0, min_value=0, max_value=BIGINT_MAX)
    min_memory_bytes = StrictIntegerField(required=False, default=0, min_value=0, max_value=BIGINT_MAX)
    min_disk_bytes = StrictIntegerField(required=False, default=0, min_value=0, max_value=BIGINT_MAX)
    properties = ImagePropertyCreateSerializer(
        many=True, required=False, default=list, help_text="Keys unique within the image."
    )


class NodeAutoUpgradeSerializer(StrictInputSerializer):
    """PATCH of a node: auto_upgrade is the one field a client changes in place (§10)."""

    auto_upgrade = StrictBooleanField(help_text="Follow newer images of the protocol (same major) by rollouts.")


class NodeUpgradeSerializer(StrictInputSerializer):
    image_id = StrictUUIDField()
    force = StrictBooleanField(
        required=False, default=False, help_text="Place past the host's capacity (needs hosts.overcommit_host)."
    )
    dry_run = StrictBooleanField(
        required=False, default=False, help_text="Plan only: answer what the upgrade would do; write nothing."
    )


# ---------------------------------------------------------------------------------------------
# Representations


@extend_schema_field(OpenApiTypes.INT64)
class Int64Field(serializers.IntegerField):
    """An exact integer documented as int64 (counters and allocations are PostgreSQL bigints)."""


class FleetModelSerializer(serializers.ModelSerializer):
    """A read-only model serializer whose fields are built from the model once per class and
    copied for each instance: DRF introspects the model anew for every instance, which made up
    most of the 0.7 ms of CPU an upgrade's answer took to render (docs/performance.md)."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.BigIntegerField: Int64Field,
    }

    def get_fields(self):
        built = type(self).__dict__.get("_built_fields")
        if built is None:
            built = super().get_fields()
            type(self)._built_fields = built
        return copy.deepcopy(built)


@extend_schema_field(OpenApiTypes.INT64)
class FreeCapacityField(serializers.Field):
    """Allocatable minus allocation of one resource (§11); negative on an over-allocated host."""

    def __init__(self, resource: str, **kwargs):
        self.resource = resource
        super().__init__(source="*", read_only=True, **kwargs)

    def to_representation(self, host):
        return free(host, self.resource)


class HostSerializer(FleetModelSerializer):
    free_cpu_cores = FreeCapacityField("cpu_cores")
    free_memory_bytes = FreeCapacityField("memory_bytes")
    free_disk_bytes = FreeCapacityField("disk_bytes")

    class Meta:
        model = Host
        fields = [
            "id",
            "name",
            *RESOURCES,
            *RESERVED.values(),
            *RATIO.values(),
            "max_nodes",
            "region",
            "scheduling",
            *ALLOCATABLE.values(),
            "node_count",
            *COUNTER_OF_RESOURCE.values(),
            "free_cpu_cores",
            "free_memory_bytes",
            "free_disk_bytes",
        ]
        read_only_fields = fields


class HostWrittenSerializer(HostSerializer):
    """A host as written, and what it is now over (§11)."""

    over_allocated = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text="Each resource now above allocatable (node_count: past max_nodes); empty otherwise.",
    )

    class Meta(HostSerializer.Meta):
        fields = [*HostSerializer.Meta.fields, "over_allocated"]
        read_only_fields = fields

    def to_representation(self, written):
        data = super().to_representation(written.host)
        data["over_allocated"] = list(written.over_allocated)
        return data


class ImagePropertySerializer(FleetModelSerializer):
    class Meta:
        model = ImageProperty
        fields = ["key", "default_value", "add_cpu_cores", "add_memory_bytes", "add_disk_bytes"]
        read_only_fields = fields


class ImageSerializer(FleetModelSerializer):
    properties = ImagePropertySerializer(many=True, read_only=True)

    class Meta:
        model = Image
        fields = ["id", "protocol", "version", "min_cpu_cores", "min_memory_bytes", "min_disk_bytes", "properties"]
        read_only_fields = fields


class ImageCreatedSerializer(ImageSerializer):
    """An added image, as GET /api/v1/images/{id}/ shows it, and the auto-upgrade rollout it made."""

    auto_rollout_id = serializers.SerializerMethodField()

    class Meta(ImageSerializer.Meta):
        fields = [*ImageSerializer.Meta.fields, "auto_rollout_id"]
        read_only_fields = fields

    @extend_schema_field(
        serializers.UUIDField(
            allow_null=True, help_text="The rollout to the auto_upgrade nodes this image is newer for; null: none."
        )
    )
    def get_auto_rollout_id(self, image):
        rollout = self.context.get("rollout")
        return str(rollout.pk) if rollout else None


@extend_schema_field({"type": "object", "additionalProperties": {"type": "string"}, "nullable": True})
class ConfigField(serializers.JSONField):
    """The node's config as stored: an object of strings (legacy rows may hold null)."""


class NodeSerializer(FleetModelSerializer):
    host_id = serializers.UUIDField(read_only=True)
    image_id = serializers.UUIDField(read_only=True)
    properties = ConfigField(read_only=True)

    class Meta:
        model = Node
        fields = [
            "id",
            "name",
            "host_id",
            "image_id",
            "properties",
            *RESOURCES,
            "state",
            "auto_upgrade",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class ResourcesSerializer(serializers.Serializer):
    cpu_cores = Int64Field(read_only=True)
    memory_bytes = Int64Field(read_only=True)
    disk_bytes = Int64Field(read_only=True)


class UpgradeChangeSerializer(serializers.Serializer):
    from_image_id = serializers.UUIDField(source="from_image.id", read_only=True)
    to_image_id = serializers.UUIDField(source="to_image.id", read_only=True)
    old = ResourcesSerializer(read_only=True)
    new = ResourcesSerializer(
        read_only=True,
        allow_null=True,
        help_text="dry_run: null when no allocation on the target image can be computed (incompatible_image, "
        "invalid_image_config, or one past 64 bits)",
    )
    delta = ResourcesSerializer(
        read_only=True, allow_null=True, help_text="new - old (negative where the node shrinks); null with new"
    )


class UpgradeSerializer(serializers.Serializer):
    """An applied upgrade (nodes.changes.UpgradeOutcome): the node and its host after it."""

    node = NodeSerializer(read_only=True)
    host = HostSerializer(read_only=True)
    upgrade = UpgradeChangeSerializer(source="*", read_only=True)


class FitsSerializer(serializers.Serializer):
    cpu_cores = serializers.BooleanField(read_only=True)
    memory_bytes = serializers.BooleanField(read_only=True)
    disk_bytes = serializers.BooleanField(read_only=True)


@extend_schema_field(Problem)
class ProblemField(serializers.Field):
    def to_representation(self, error):
        return error.as_problem()


@extend_schema_serializer(component_name="UpgradeResult")
class UpgradePlanSerializer(UpgradeSerializer):
    """The answer of an upgrade: the node and its host after it. With dry_run: the node as it is,
    its host as it would be after, and `would_apply`, `fits` and `error` (what applying would do)."""

    # This one schema documents both answers, so fits and error are not read-only (read-only
    # fields are marked required in the schema), and UpgradeSerializer renders the applied one.

    would_apply = serializers.BooleanField(
        required=False, help_text="dry_run only. Whether applying the upgrade now would succeed (error is null)."
    )
    fits = FitsSerializer(
        required=False,
        allow_null=True,
        help_text="dry_run only. Per resource: whether it fits the host after the change; null when an error "
        "other than insufficient_capacity comes first (capacity is not the question then).",
    )
    error = ProblemField(
        required=False,
        allow_null=True,
        help_text="dry_run only. null, or the problem details that applying the upgrade would raise.",
    )

    def to_representation(self, outcome):
        """A plan never pretends: past an error that comes before capacity, `fits` is null and
        `host` is the host as it is (nothing would change); without a computable allocation on
        the target image, `new` and `delta` are null."""
        data = super().to_representation(outcome)
        if not outcome.capacity_checked:
            data["fits"] = None
            data["host"] = HostSerializer(outcome.node.host).data
        if not outcome.new_known:
            data["upgrade"]["new"] = data["upgrade"]["delta"] = None
        return data


# ---------------------------------------------------------------------------------------------
# Placement (§11): the plan and headroom


@extend_schema_field(OpenApiTypes.DOUBLE)
class ScoreField(serializers.Field):
    """A score for display (a JSON number); the ranking itself is exact."""

    def to_representation(self, value):
        return float(value)


class PlannedPlacementSerializer(serializers.Serializer):
    host_id = serializers.UUIDField(read_only=True)
    host_name = serializers.CharField(read_only=True)
    score = ScoreField(read_only=True, help_text="The host's score with this node (and the earlier ones) on it.")


class PlanShortfallSerializer(serializers.Serializer):
    resource = serializers.CharField(read_only=True)
    requested = Int64Field(read_only=True)
    available = Int64Field(read_only=True)


class PlanHostSerializer(serializers.Serializer):
    host_id = serializers.UUIDField(read_only=True)
    host_name = serializers.CharField(read_only=True)
    fits = serializers.BooleanField(read_only=True)
    score = ScoreField(read_only=True)
    reasons = serializers.ListField(child=serializers.CharField(), read_only=True)
    shortfalls = PlanShortfallSerializer(many=True, read_only=True)


class ExcludedSerializer(serializers.Serializer):
    scheduling = serializers.IntegerField(read_only=True)
    region = serializers.IntegerField(read_only=True)
    cpu_cores = serializers.IntegerField(read_only=True)
    memory_bytes = serializers.IntegerField(read_only=True)
    disk_bytes = serializers.IntegerField(read_only=True)
    node_count = serializers.IntegerField(read_only=True)


class PlacementPlanSerializer(serializers.Serializer):
    """Where `count` nodes would go (nodes.placement.node_placement_plan); nothing is written."""

    requested = ResourcesSerializer(source="plan.requested", read_only=True)
    count = serializers.IntegerField(source="plan.count", read_only=True)
    placed = serializers.IntegerField(source="plan.placed", read_only=True)
    placements = PlannedPlacementSerializer(source="plan.placements", many=True, read_only=True)
    hosts_considered = serializers.IntegerField(source="plan.hosts_considered", read_only=True)
    excluded = ExcludedSerializer(source="plan.excluded", read_only=True, help_text="For the first node.")
    hosts = PlanHostSerializer(
        source="plan.hosts", many=True, read_only=True, help_text="The best 25 candidates, then the 25 closest misses."
    )
    error = ProblemField(
        source="plan.error", read_only=True, allow_null=True, help_text="null, or what the first unplaced node gets."
    )


class RegionHeadroomSerializer(serializers.Serializer):
    region = serializers.CharField(read_only=True)
    nodes = Int64Field(read_only=True, allow_null=True)


class HeadroomSerializer(serializers.Serializer):
    image_id = serializers.UUIDField(source="image.id", read_only=True)
    requested = ResourcesSerializer(source="headroom.requested", read_only=True)
    nodes = Int64Field(source="headroom.nodes", read_only=True, allow_null=True, help_text="null: nothing bounds it.")
    hosts_with_room = serializers.IntegerField(source="headroom.hosts_with_room", read_only=True)
    regions = RegionHeadroomSerializer(source="headroom.regions", many=True, read_only=True)
