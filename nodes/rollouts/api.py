"""The rollouts' REST API (§10, /api/v1/rollouts/): strict input, one service call per view,
reads in a constant number of queries (the counts of a page's rollouts in one grouped query)."""

from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from config.errors import NotFound, PermissionDenied
from config.http.api import StrictCursorPagination
from config.http.openapi import problems
from nodes.api.permissions import model_permission
from nodes.api.serializers import (
    FitsSerializer,
    ResourcesSerializer,
    StrictBooleanField,
    StrictCharField,
    StrictInputSerializer,
    StrictIntegerField,
    StrictUUIDField,
)
from nodes.rollouts.models import Rollout, RolloutNode, RolloutNodeStatus
from nodes.rollouts.plan import rollout_plan, selection_check
from nodes.rollouts.selectors import rollout_counts
from nodes.rollouts.services import (
    rollout_abort,
    rollout_create,
    rollout_pause,
    rollout_resume,
    rollout_start,
)

INT_MAX = 2**31 - 1

# ---------------------------------------------------------------------------------------------
# Input


class RolloutCreateSerializer(StrictInputSerializer):
    image_id = StrictUUIDField(help_text="The target image; nodes of its protocol on another image are selected.")
    from_versions = serializers.ListField(
        child=StrictCharField(max_length=100),
        required=False,
        default=list,
        max_length=1000,
        help_text="Only nodes on these versions of the protocol.",
    )
    host_ids = serializers.ListField(
        child=StrictUUIDField(), required=False, default=list, max_length=10000, help_text="Only nodes on these hosts."
    )
    node_ids = serializers.ListField(
        child=StrictUUIDField(),
        required=False,
        default=list,
        max_length=10000,
        help_text="Only these nodes (each that does not qualify is skipped with the reason).",
    )
    batch_size = StrictIntegerField(required=False, default=25, min_value=1, max_value=INT_MAX)
    canary = StrictIntegerField(
        required=False, default=1, min_value=0, max_value=INT_MAX, help_text="Size of batch 1; 0: no canary batch."
    )
    pause_after_canary = StrictBooleanField(required=False, default=True)
    max_failures = StrictIntegerField(
        required=False,
        default=1,
        min_value=1,
        max_value=INT_MAX,
        help_text="Failed plus rolled-back nodes that halt the rollout.",
    )
    result_timeout_seconds = StrictIntegerField(required=False, default=3600, min_value=1, max_value=INT_MAX)
    start = StrictBooleanField(required=False, default=False, help_text="Start at once (needs nodes.change_rollout).")
    dry_run = StrictBooleanField(required=False, default=False, help_text="Answer the plan; write nothing.")


class RolloutResumeSerializer(StrictInputSerializer):
    max_failures = StrictIntegerField(
        required=False,
        min_value=1,
        max_value=INT_MAX,
        help_text="A new limit; a halted rollout needs one above its failures so far.",
    )


# ---------------------------------------------------------------------------------------------
# Representations


class CountsSerializer(serializers.Serializer):
    """One integer per node status."""

    pending = serializers.IntegerField()
    upgrading = serializers.IntegerField()
    succeeded = serializers.IntegerField()
    failed = serializers.IntegerField()
    rolled_back = serializers.IntegerField()
    refused = serializers.IntegerField()
    skipped = serializers.IntegerField()


class RolloutSerializer(serializers.ModelSerializer):
    image_id = serializers.UUIDField(read_only=True)
    creator = serializers.CharField(source="creator.get_username", read_only=True, allow_null=True, default=None)
    counts = serializers.SerializerMethodField()

    class Meta:
        model = Rollout
        fields = [
            "id",
            "image_id",
            "state",
            "reason",
            "counts",
            "current_batch",
            "batches",
            "batch_size",
            "canary",
            "pause_after_canary",
            "max_failures",
            "result_timeout_seconds",
            "from_versions",
            "host_ids",
            "node_ids",
            "auto",
            "creator",
            "created_at",
            "started_at",
            "finished_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_counts(self, rollout) -> CountsSerializer:
        return self.context["counts"][rollout.pk]


class RolloutNodeSerializer(serializers.ModelSerializer):
    old = serializers.SerializerMethodField()
    new = serializers.SerializerMethodField()

    class Meta:
        model = RolloutNode
        fields = [
            "node_id",
            "node_name",
            "host_id",
            "host_name",
            "batch",
            "status",
            "reason",
            "old",
            "new",
            "command_id",
            "upgraded_at",
        ]
        read_only_fields = fields

    def get_old(self, row) -> ResourcesSerializer:
        return _resources(row, "old_")

    def get_new(self, row) -> ResourcesSerializer:
        return _resources(row, "new_")


def _resources(obj, prefix):
    return {name: getattr(obj, prefix + name) for name in ("cpu_cores", "memory_bytes", "disk_bytes")}


class PlannedNodeSerializer(serializers.Serializer):
    node_id = serializers.UUIDField()
    node_name = serializers.CharField()
    host_id = serializers.UUIDField()
    host_name = serializers.CharField()
    batch = serializers.IntegerField(help_text="0: skipped, in no batch.")
    status = serializers.ChoiceField(choices=RolloutNodeStatus.choices, help_text="pending or skipped in a plan.")
    reason = serializers.CharField()
    old = ResourcesSerializer()
    new = ResourcesSerializer()
    fits = FitsSerializer(
        allow_null=True, help_text="Per resource, counting the earlier nodes of the same host (null: not computed)."
    )


class HostTotalsSerializer(serializers.Serializer):
    host_id = serializers.UUIDField()
    host_name = serializers.CharField()
    selected = serializers.IntegerField(help_text="Nodes of the host to upgrade.")
    skipped = serializers.IntegerField()
    old = ResourcesSerializer(help_text="Sum of the selected nodes' allocations now.")
    new = ResourcesSerializer(help_text="Sum of their allocations after.")
    delta = ResourcesSerializer()
    after = ResourcesSerializer(help_text="The host's counters after every selected node.")
    free_after = ResourcesSerializer(help_text="Capacity minus counters after.")


class RolloutPlanSerializer(serializers.Serializer):
    """A dry run: the rollout's shape, nothing written."""

    image_id = serializers.UUIDField(source="selection.image.pk")
    counts = CountsSerializer()
    batches = serializers.IntegerField()
    old = ResourcesSerializer()
    new = ResourcesSerializer()
    nodes = PlannedNodeSerializer(many=True)
    hosts = HostTotalsSerializer(many=True)


# ---------------------------------------------------------------------------------------------
# Views

READ_PERMISSIONS = ("nodes.view_rollout", "nodes.add_rollout", "nodes.change_rollout")
ACTION_ERRORS = problems(400, 401, 403, 404, 409, 415, 503)


class CanReadRollouts(model_permission("nodes.view_rollout")):
    message = "You need the nodes.view_rollout permission."

    def has_permission(self, request, view):
        return any(request.user.has_perm(perm) for perm in READ_PERMISSIONS)


class RolloutPagination(StrictCursorPagination):
    ordering = ("-created_at",)


class RolloutNodePagination(StrictCursorPagination):
    ordering = ("position",)


@extend_schema_view(
    list=extend_schema(
        summary="List rollouts", responses={200: RolloutSerializer(many=True), **problems(400, 401, 403, 503)}
    ),
    retrieve=extend_schema(summary="A rollout", responses={200: RolloutSerializer, **problems(401, 403, 404, 503)}),
)
class RolloutViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Rollouts: move a slice of the fleet to an image in batches, in the background (§10)."""

    queryset = Rollout.objects.select_related("creator")
    serializer_class = RolloutSerializer
    pagination_class = RolloutPagination
    lookup_value_converter = "uuid"

    def get_permissions(self):
        if self.action == "create":
            return [
                IsAuthenticated(),
                model_permission("nodes.add_rollout")(),
                model_permission("nodes.upgrade_node")(),
            ]
        if self.action in ("start", "pause", "resume", "abort"):
            return [IsAuthenticated(), model_permission("nodes.change_rollout")()]
        return [IsAuthenticated(), CanReadRollouts()]

    def get_object(self):
        try:
            return self.get_queryset().get(pk=self.kwargs["pk"])
        except Rollout.DoesNotExist:
            raise NotFound(f"No rollout with id {self.kwargs['pk']}.") from None

    def _render(self, rollouts, *, many=False):
        items = list(rollouts) if many else [rollouts]
        context = {**self.get_serializer_context(), "counts": rollout_counts([r.pk for r in items])}
        return RolloutSerializer(items if many else rollouts, many=many, context=context).data

    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self._render(page, many=True))

    def retrieve(self, request, pk):
        return Response(self._render(self.get_object()))

    @extend_schema(
        summary="Create a rollout (or plan it with dry_run)",
        request=RolloutCreateSerializer,
        responses={
            201: RolloutSerializer,
            200: OpenApiResponse(RolloutPlanSerializer, description="dry_run: the plan; nothing written."),
            **problems(400, 401, 403, 404, 413, 415, 503),
        },
    )
    def create(self, request):
        serializer = RolloutCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        start, dry_run = data.pop("start"), data.pop("dry_run")
        if start and not dry_run and not request.user.has_perm("nodes.change_rollout"):
            raise PermissionDenied("start=true starts the rollout and needs the nodes.change_rollout permission.")
        selection = selection_check(**data)
        if dry_run:
            return Response(RolloutPlanSerializer(rollout_plan(selection)).data)
        rollout = rollout_create(selection=selection, start=start, actor=request.user)
        location = request.build_absolute_uri(reverse("rollout-detail", args=[rollout.pk]))
        return Response(self._render(rollout), status=status.HTTP_201_CREATED, headers={"Location": location})

    @extend_schema(
        summary="The rollout's nodes: batch, status, reason",
        # drf-spectacular documents pagination only on list actions: named here.
        parameters=[
            OpenApiParameter("cursor", str, description="The pagination cursor value."),
            OpenApiParameter("page_size", int, description="Number of results to return per page (1 to 1000)."),
        ],
        responses={200: RolloutNodeSerializer(many=True), **problems(400, 401, 403, 404, 503)},
    )
    @action(detail=True, methods=["get"], pagination_class=RolloutNodePagination)
    def nodes(self, request, pk):
        rollout = self.get_object()
        page = self.paginate_queryset(RolloutNode.objects.filter(rollout=rollout))
        return self.get_paginated_response(RolloutNodeSerializer(page, many=True).data)

    def _control(self, service, **kwargs):
        return Response(self._render(service(rollout_id=self.kwargs["pk"], actor=self.request.user, **kwargs)))

    @extend_schema(summary="Start a planned rollout", request=None, responses={200: RolloutSerializer, **ACTION_ERRORS})
    @action(detail=True, methods=["post"])
    def start(self, request, pk):
        return self._control(rollout_start)

    @extend_schema(summary="Pause a running rollout", request=None, responses={200: RolloutSerializer, **ACTION_ERRORS})
    @action(detail=True, methods=["post"])
    def pause(self, request, pk):
        return self._control(rollout_pause)

    @extend_schema(
        summary="Resume a paused or halted rollout",
        request=RolloutResumeSerializer,
        responses={200: RolloutSerializer, **ACTION_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def resume(self, request, pk):
        serializer = RolloutResumeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return self._control(rollout_resume, max_failures=serializer.validated_data.get("max_failures"))

    @extend_schema(
        summary="Abort a rollout (in-flight upgrades finish)",
        request=None,
        responses={200: RolloutSerializer, **ACTION_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def abort(self, request, pk):
        return self._control(rollout_abort)
