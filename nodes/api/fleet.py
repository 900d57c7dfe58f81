"""GET /api/v1/fleet/ (§12): the fleet page's numbers as JSON, from the one selector the admin home
reads (nodes.overview), so the two never disagree. Needs hosts.view_host; the panels of nodes,
commands, rollouts, outcomes and headroom are null for a user without the permission they need."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from config.http.openapi import problems
from nodes.overview import FLEET_MODEL, fleet_overview, may_view

Whole = serializers.IntegerField


class FleetAmountSerializer(serializers.Serializer):
    used = Whole()
    allocatable = Whole()
    physical = Whole()


class FleetSlotsSerializer(serializers.Serializer):
    used = Whole(help_text="Σ node_count")
    allocatable = Whole(help_text="Σ max_nodes over the hosts that have a limit")
    unlimited = Whole(help_text="Hosts without a slot limit (max_nodes null)")


class FleetSchedulingSerializer(serializers.Serializer):
    automatic = Whole()
    manual = Whole()
    draining = Whole()


class FleetRegionCapacitySerializer(serializers.Serializer):
    region = serializers.CharField(help_text='"" for hosts without a region')
    hosts = Whole()
    cpu_cores = FleetAmountSerializer()
    memory_bytes = FleetAmountSerializer()
    disk_bytes = FleetAmountSerializer()
    node_slots = FleetSlotsSerializer()


class FleetCapacitySerializer(serializers.Serializer):
    cpu_cores = FleetAmountSerializer()
    memory_bytes = FleetAmountSerializer()
    disk_bytes = FleetAmountSerializer()
    node_slots = FleetSlotsSerializer()
    regions = FleetRegionCapacitySerializer(many=True)


class FleetHostsSerializer(serializers.Serializer):
    total = Whole()
    offline = Whole()
    over_allocated = Whole()
    drifted = Whole(help_text="Hosts the last audit found drifted")
    scheduling = FleetSchedulingSerializer()


class FleetNodeStatesSerializer(serializers.Serializer):
    creating = Whole()
    running = Whole(help_text="Σ node_count minus the other states (from the counters, which the audit checks)")
    upgrading = Whole()
    failed = Whole()


class FleetCommandsSerializer(serializers.Serializer):
    pending = Whole()
    acked = Whole()
    overdue = Whole()


class FleetRolloutStatesSerializer(serializers.Serializer):
    planned = Whole()
    running = Whole()
    paused = Whole()
    halted = Whole()
    completed = Whole()
    aborted = Whole()


class FleetOutcomeHourSerializer(serializers.Serializer):
    hour = serializers.DateTimeField(help_text="The hour's start (UTC)")
    succeeded = Whole()
    failed = Whole()
    rolled_back = Whole()


class FleetLastAuditSerializer(serializers.Serializer):
    time = serializers.DateTimeField()
    host_findings = Whole()
    node_findings = Whole()


class FleetRegionHeadroomSerializer(serializers.Serializer):
    region = serializers.CharField()
    nodes = Whole(allow_null=True)


class FleetRequestedSerializer(serializers.Serializer):
    cpu_cores = Whole()
    memory_bytes = Whole()
    disk_bytes = Whole()


class FleetHeadroomSerializer(serializers.Serializer):
    image_id = serializers.UUIDField()
    protocol = serializers.CharField()
    version = serializers.CharField()
    requested = FleetRequestedSerializer()
    nodes = Whole(allow_null=True, help_text="null: nothing bounds it")
    hosts_with_room = Whole()
    regions = FleetRegionHeadroomSerializer(many=True)


class FleetSerializer(serializers.Serializer):
    capacity = FleetCapacitySerializer()
    hosts = FleetHostsSerializer()
    nodes = FleetNodeStatesSerializer(allow_null=True, help_text="null without nodes.view_node")
    commands = FleetCommandsSerializer(allow_null=True, help_text="null without nodes.view_command")
    rollouts = FleetRolloutStatesSerializer(allow_null=True, help_text="null without nodes.view_rollout")
    outcomes = FleetOutcomeHourSerializer(
        many=True, allow_null=True, help_text="The last 24 hours, oldest first; null without nodes.view_node"
    )
    last_audit = FleetLastAuditSerializer(allow_null=True)
    headroom = FleetHeadroomSerializer(
        many=True, allow_null=True, help_text="The newest image of each protocol; null without nodes.view_image"
    )


class FleetReadPermission(BasePermission):
    """hosts.view_host (or hosts.change_host, which reads too, as in the admin)."""

    message = "You need the hosts.view_host permission."

    def has_permission(self, request, view):
        return may_view(request.user, FLEET_MODEL)


class FleetView(APIView):
    """The fleet at a glance."""

    permission_classes = [IsAuthenticated, FleetReadPermission]

    @extend_schema(
        summary="The fleet at a glance",
        description="Capacity (overall and per region), hosts, nodes by state, agent commands, rollouts by "
        "state, agent outcomes per hour over the last 24 hours, the last audit and headroom — the numbers "
        "of the admin home, from the same selector. A fixed number of statements whatever the fleet's size.",
        responses={200: FleetSerializer, **problems(400, 401, 403, 503)},
    )
    def get(self, request):
        return Response(FleetSerializer(fleet_overview(user=request.user)).data)
