"""Placement in the API (§11): how to choose a host, the placement plan and the headroom."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from hosts.models import Host
from nodes.api.serializers.fields import (
    Int64Field,
    ProblemField,
    PropertiesField,
    ResourcesSerializer,
    StrictBooleanField,
    StrictCharField,
    StrictChoiceField,
    StrictInputSerializer,
    StrictIntegerField,
    StrictUUIDField,
)


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


class PlacementPlanInputSerializer(StrictInputSerializer):
    image_id = StrictUUIDField()
    properties = PropertiesField(
        required=False, help_text="Property values (strings) by key, as for a create; missing keys take defaults."
    )
    placement = PlacementInputSerializer(required=False, allow_null=True, default=None)
    count = StrictIntegerField(required=False, default=1, min_value=1, max_value=1000, help_text="Nodes to place.")


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
