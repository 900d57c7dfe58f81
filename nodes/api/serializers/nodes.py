"""Nodes in the API: create, upgrade and auto-upgrade input, the node, the applied upgrade and its plan."""

from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from config.units import RESOURCES
from nodes.api.serializers.fields import (
    FleetModelSerializer,
    ProblemField,
    PropertiesField,
    ResourcesSerializer,
    StrictBooleanField,
    StrictCharField,
    StrictInputSerializer,
    StrictUUIDField,
)
from nodes.api.serializers.hosts import HostSerializer
from nodes.api.serializers.placement import PlacementInputSerializer
from nodes.models import Node


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


@extend_schema_serializer(component_name="UpgradeResult")
class UpgradePlanSerializer(UpgradeSerializer):
    """The answer of an upgrade: the node and its host after it. With dry_run: the node as it is,
    its host as it would be after, and `would_apply`, `fits` and `error` (what applying would do)."""

    # This one schema documents both answers, so fits and error are not read-only (read-only
    # fields are marked required in the schema), and UpgradeSerializer (rendered as
    # nodes.api.answers.upgrade_answer) the applied one.

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
