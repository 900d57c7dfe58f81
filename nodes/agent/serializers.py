"""The agent API's input (strict, as §5) and its representation of commands."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from nodes.agent.lifecycle import MESSAGE_MAX_LENGTH, RETRY_AFTER_RANGE
from nodes.api.serializers import StrictCharField, StrictInputSerializer
from nodes.models import RETRY_LATER, Command, CommandStatus

OUTCOMES = (CommandStatus.SUCCEEDED, CommandStatus.FAILED, CommandStatus.ROLLED_BACK, RETRY_LATER)


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer only (DRF's IntegerField also takes "5" and 5.0)."""

    def to_internal_value(self, data):
        if not isinstance(data, int) or isinstance(data, bool):
            self.fail("invalid")
        return super().to_internal_value(data)


class CommandResultSerializer(StrictInputSerializer):
    outcome = serializers.ChoiceField(
        choices=[(outcome, outcome) for outcome in OUTCOMES],
        help_text="rolled_back is for node_upgrade only; retry_later needs retry_after_seconds.",
    )
    message = StrictCharField(
        required=False, default="", allow_blank=True, max_length=MESSAGE_MAX_LENGTH, help_text="What the agent saw."
    )
    retry_after_seconds = StrictIntegerField(
        required=False,
        min_value=RETRY_AFTER_RANGE[0],
        max_value=RETRY_AFTER_RANGE[1],
        help_text="With retry_later only: hide the command from polls for this long.",
    )

    def validate(self, attrs):
        retry = attrs.get("retry_after_seconds")
        if attrs["outcome"] == RETRY_LATER and retry is None:
            raise serializers.ValidationError({"retry_after_seconds": ["Required with retry_later."]})
        if attrs["outcome"] != RETRY_LATER and retry is not None:
            raise serializers.ValidationError({"retry_after_seconds": ["Only with the outcome retry_later."]})
        return attrs


class EmptyBodySerializer(StrictInputSerializer):
    """No fields: an empty body or `{}`."""


@extend_schema_field(
    {
        "type": "object",
        "description": "node_create: {image_id, properties}; node_upgrade: {from, to}, each "
        "{image_id, properties, allocation: {cpu_cores, memory_bytes, disk_bytes}}; node_delete: {name, image_id}.",
        "additionalProperties": True,
    }
)
class PayloadField(serializers.JSONField):
    pass


class AgentCommandSerializer(serializers.ModelSerializer):
    node_id = serializers.UUIDField(read_only=True)
    payload = PayloadField(read_only=True)

    class Meta:
        model = Command
        fields = ["id", "kind", "node_id", "payload", "status", "attempts", "created_at"]
        read_only_fields = fields


class CommandSerializer(AgentCommandSerializer):
    """A command with its whole lifecycle (the answers to ack, result and cancel)."""

    host_id = serializers.UUIDField(read_only=True)

    class Meta(AgentCommandSerializer.Meta):
        fields = [
            *AgentCommandSerializer.Meta.fields,
            "host_id",
            "acked_at",
            "finished_at",
            "not_before",
            "message",
        ]
        read_only_fields = fields


class AgentCommandListSerializer(serializers.Serializer):
    results = AgentCommandSerializer(many=True, help_text="Open commands, oldest first, at most 100.")
