"""Images in the API: the create input with its properties, and the representation."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config.units import BIGINT_MAX
from nodes.api.serializers.fields import (
    FleetModelSerializer,
    StrictCharField,
    StrictInputSerializer,
    StrictIntegerField,
)
from nodes.models import Image, ImageProperty


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
