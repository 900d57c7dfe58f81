"""GET /api/v1/fleet/ (§12): the fleet page's numbers as JSON, from the one selector the admin home
reads (nodes.overview), so the two never disagree. Needs hosts.view_host; the panels of nodes,
commands, rollouts, outcomes and headroom are null for a user without the permission they need."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from config.http.openapi import problems
from nodes.api.permissions import model_permission
from nodes.overview import fleet_overview

Whole = serializers.IntegerField


class AmountSerializer(serializers.Serializer):
    used = Whole()
    allocatable = Whole()
    physical = Whole()


class SlotsSerializer(serializers.Serializer):
    used = Whole(help_text="Σ node_count")
    allocatable = Whole(help_text="Σ max_nodes over the hosts that have a limit")
    unlimited = Whole(help_text="Hosts without a slot limit (max_nodes null)")


class SchedulingSerializer(serializers.Serializer):
    automatic = Whole()
    manual = Whole()
    draining = Whole()


class RegionCapacitySerializer(serializers.Serializer):
    region = serializers.CharField(help_text='"" for hosts without a region')
    hosts = Whole()
    cpu_cores = AmountSerializer()
    memory_bytes = AmountSerializer()
    disk_bytes = AmountSerializer()
    node_slots = SlotsSerializer()


class CapacitySerializer(serializers.Serializer):
    cpu_cores = AmountSerializer()
    memory_bytes = AmountSerializer()
    disk_bytes = AmountSerializer()
    node_slots = SlotsSerializer()
    regions = RegionCapacitySerializer(many=True)


class HostsSerializer(serializers.Serializer):
    total = Whole()
    offline = Whole()
    over_allocated = Whole()
    drifted = Whole(help_text="Hosts the last audit found drifted")
    scheduling = SchedulingSerializer()


class NodeStatesSerializer(serializers.Serializer):
    creating = Whole()
    running = Whole(help_text="Σ node_count minus the other states (from the counters, which the audit checks)")
    upgrading = Whole()
    failed = Whole()


class CommandsSerializer(serializers.Serializer):
    pending = Whole()
    acked = Whole()
    overdue = Whole()


class RolloutStatesSerializer(serializers.Serializer):
    planned = Whole()
    running = Whole()
    paused = Whole()
    halted = Whole()
    completed = Whole()
    aborted = Whole()


class OutcomeHourSerializer(serializers.Serializer):
    hour = serializers.DateTimeField(help_text="The hour's start (UTC)")
    succeeded = Whole()
    failed = Whole()
    rolled_back = Whole()


class LastAuditSerializer(serializers.Serializer):
    time = serializers.DateTimeField()
    host_findings = Whole()
    node_findings = Whole()


class RegionHeadroomSerializer(serializers.Serializer):
    region = serializers.CharField()
    nodes = Whole(allow_null=True)


class RequestedSerializer(serializers.Serializer):
    cpu_cores = Whole()
    memory_bytes = Whole()
    disk_bytes = Whole()


class HeadroomSerializer(serializers.Serializer):
    image_id = serializers.UUIDField()
    protocol = serializers.CharField()
    version = serializers.CharField()
    requested = RequestedSerializer()
    nodes = Whole(allow_null=True, help_text="null: nothing bounds it")
    hosts_with_room = Whole()
    regions = RegionHeadroomSerializer(many=True)


class FleetSerializer(serializers.Serializer):
    capacity = CapacitySerializer()
    hosts = HostsSerializer()
    nodes = NodeStatesSerializer(allow_null=True, help_text="null without nodes.view_node")
    commands = CommandsSerializer(allow_null=True, help_text="null without nodes.view_command")
    rollouts = RolloutStatesSerializer(allow_null=True, help_text="null without nodes.view_rollout")
    outcomes = OutcomeHourSerializer(
        many=True, allow_null=True, help_text="The last 24 hours, oldest first; null without nodes.view_node"
    )
    last_audit = LastAuditSerializer(allow_null=True)
    headroom = HeadroomSerializer(
        many=True, allow_null=True, help_text="The newest image of each protocol; null without nodes.view_image"
    )


class FleetView(APIView):
    """The fleet at a glance."""

    permission_classes = [IsAuthenticated, model_permission("hosts.view_host")]

    @extend_schema(
        summary="The fleet at a glance",
        description="Capacity (overall and per region), hosts, nodes by state, agent commands, rollouts by "
        "state, agent outcomes per hour over the last 24 hours, the last audit and headroom — the numbers "
        "of the admin home, from the same selector. A fixed number of statements whatever the fleet's size.",
        responses={200: FleetSerializer, **problems(400, 401, 403, 503)},
    )
    def get(self, request):
        return Response(FleetSerializer(fleet_overview(user=request.user)).data)
