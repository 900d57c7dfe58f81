"""Hosts in the API: the create and change input (capacity model of §11) and the representation."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config.units import BIGINT_MAX, RESOURCES
from hosts.capacity import ALLOCATABLE, RATIO, RESERVED, free
from hosts.models import COUNTER_OF_RESOURCE, Host, Scheduling
from nodes.api.serializers.fields import (
    FleetModelSerializer,
    StrictCharField,
    StrictChoiceField,
    StrictInputSerializer,
    StrictIntegerField,
)


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


class HostChangeSerializer(HostWriteSerializer):
    """PATCH of a host: any of its writable fields, each optional (§11)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.required = False


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
