"""The REST API's views (/api/v1/): each parses its input, makes one service call or read, and
renders the result. Errors are raised, never built here: config.http.exceptions renders them."""

from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from config.errors import NotFound
from config.http.api import StrictCursorPagination
from config.http.openapi import problems
from hosts.models import Host, Source
from hosts.services import host_create, host_update
from nodes.agent.lifecycle import command_cancel
from nodes.agent.serializers import CommandSerializer, EmptyBodySerializer
from nodes.api.filters import NodeFilter
from nodes.api.permissions import ModelReadPermission, check_force, model_permission, read_permission
from nodes.api.serializers import (
    HeadroomSerializer,
    HostSerializer,
    HostWriteSerializer,
    HostWrittenSerializer,
    ImageCreatedSerializer,
    ImageCreateSerializer,
    ImageSerializer,
    NodeAutoUpgradeSerializer,
    NodeCreateSerializer,
    NodeSerializer,
    NodeUpgradeSerializer,
    PlacementPlanInputSerializer,
    PlacementPlanSerializer,
    UpgradePlanSerializer,
    UpgradeSerializer,
)
from nodes.changes import (
    image_headroom,
    node_create,
    node_delete,
    node_placement_plan,
    node_upgrade,
    node_upgrade_plan,
)
from nodes.images import image_create
from nodes.models import Image, Node
from nodes.rollouts.auto import nodes_auto_upgrade_set

DETAIL_ERRORS = problems(400, 401, 403, 404, 503)
LIST_ERRORS = problems(400, 401, 403, 503)


class ByProtocolPagination(StrictCursorPagination):
    ordering = ("protocol", "version")


class FleetReadViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """List (cursor-paginated) and detail by id; a missing id is `not_found` in the services' words."""

    lookup_value_converter = "uuid"
    permission_classes = [IsAuthenticated, ModelReadPermission]
    pagination_class = StrictCursorPagination  # by name
    noun: str

    def get_object(self):
        queryset = self.get_queryset()
        try:
            return queryset.get(pk=self.kwargs["pk"])
        except queryset.model.DoesNotExist:
            raise NotFound(f"No {self.noun} with id {self.kwargs['pk']}.") from None


@extend_schema_view(
    list=extend_schema(summary="List hosts", responses={200: HostSerializer(many=True), **LIST_ERRORS}),
    retrieve=extend_schema(summary="A host", responses={200: HostSerializer, **DETAIL_ERRORS}),
)
class HostViewSet(FleetReadViewSet):
    """Hosts: capacity, the capacity model (§11), allocation counters and free capacity
    (allocatable - counters). Writes go through hosts.services (under the host's row lock)."""

    queryset = Host.objects.all()
    serializer_class = HostSerializer
    noun = "host"

    def get_permissions(self):
        perm = {"create": "hosts.add_host", "partial_update": "hosts.change_host"}
        if self.action in perm:
            return [IsAuthenticated(), model_permission(perm[self.action])()]
        return super().get_permissions()

    @extend_schema(
        summary="Add a host",
        request=HostWriteSerializer,
        responses={201: HostWrittenSerializer, **problems(400, 401, 403, 411, 413, 415, 503)},
    )
    def create(self, request):
        serializer = HostWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        written = host_create(values=serializer.validated_data, actor=request.user, source=Source.API)
        location = request.build_absolute_uri(reverse("host-detail", args=[written.host.pk]))
        return Response(
            HostWrittenSerializer(written).data, status=status.HTTP_201_CREATED, headers={"Location": location}
        )

    @extend_schema(
        summary="Change a host's name, capacity, reserve, ratios, slots, region or scheduling",
        description="Takes the host's row lock. Allowed even when the host ends over-allocated: "
        "`over_allocated` then names each resource above allocatable (`node_count`: past max_nodes).",
        request=HostWriteSerializer(partial=True),
        responses={200: HostWrittenSerializer, **problems(400, 401, 403, 404, 411, 413, 415, 503)},
    )
    def partial_update(self, request, pk):
        serializer = HostWriteSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        written = host_update(host_id=pk, values=serializer.validated_data, actor=request.user, source=Source.API)
        return Response(HostWrittenSerializer(written).data)


@extend_schema_view(
    list=extend_schema(summary="List images", responses={200: ImageSerializer(many=True), **LIST_ERRORS}),
    retrieve=extend_schema(summary="An image", responses={200: ImageSerializer, **DETAIL_ERRORS}),
)
class ImageViewSet(FleetReadViewSet):
    """Images with their properties (requirements in exact integers); adding one goes through
    nodes.images.image_create (which makes the auto-upgrade rollout, §10)."""

    queryset = Image.objects.prefetch_related("properties")
    serializer_class = ImageSerializer
    pagination_class = ByProtocolPagination
    noun = "image"

    def get_permissions(self):
        if self.action == "create":
            return [IsAuthenticated(), model_permission("nodes.add_image")()]
        if self.action == "headroom":
            return [IsAuthenticated(), read_permission("nodes.image")(), read_permission("hosts.host")()]
        return super().get_permissions()

    @extend_schema(
        summary="How many more nodes of the image's default config the automatic hosts take",
        parameters=[
            OpenApiParameter(
                "region",
                str,
                required=False,
                description='Hosts of this region only ("" or an empty value: hosts without a region).',
            )
        ],
        responses={200: HeadroomSerializer, **DETAIL_ERRORS},
    )
    @action(detail=True, methods=["get"])
    def headroom(self, request, pk):
        region = request.query_params.get("region")
        return Response(HeadroomSerializer(image_headroom(image_id=pk, region=region)).data)

    @extend_schema(
        summary="Add an image (rolls out to the auto_upgrade nodes it is newer for)",
        request=ImageCreateSerializer,
        responses={201: ImageCreatedSerializer, **problems(400, 401, 403, 411, 413, 415, 503)},
    )
    def create(self, request):
        serializer = ImageCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        created = image_create(**serializer.validated_data, actor=request.user, source=Source.API)
        location = request.build_absolute_uri(reverse("image-detail", args=[created.image.pk]))
        image = Image.objects.prefetch_related("properties").get(pk=created.image.pk)
        data = ImageCreatedSerializer(image, context={"rollout": created.rollout}).data
        return Response(data, status=status.HTTP_201_CREATED, headers={"Location": location})


@extend_schema_view(
    list=extend_schema(summary="List nodes", responses={200: NodeSerializer(many=True), **LIST_ERRORS}),
    retrieve=extend_schema(summary="A node", responses={200: NodeSerializer, **DETAIL_ERRORS}),
)
class NodeViewSet(FleetReadViewSet):
    """Nodes: read, create, delete and upgrade. Writes go through nodes.changes."""

    queryset = Node.objects.all()
    serializer_class = NodeSerializer
    filterset_class = NodeFilter
    noun = "node"

    def get_permissions(self):
        perm = {
            "create": "nodes.add_node",
            "placement": "nodes.add_node",
            "destroy": "nodes.delete_node",
            "upgrade": "nodes.upgrade_node",
            "partial_update": "nodes.change_node",
        }
        if self.action in perm:
            return [IsAuthenticated(), model_permission(perm[self.action])()]
        return super().get_permissions()

    def _input(self, serializer_class) -> dict:
        serializer = serializer_class(data=self.request.data)
        serializer.is_valid(raise_exception=True)
        check_force(self.request.user, force=serializer.validated_data["force"])
        return serializer.validated_data

    @extend_schema(
        summary="Create a node",
        request=NodeCreateSerializer,
        responses={201: NodeSerializer, **problems(400, 401, 403, 404, 409, 411, 413, 415, 422, 503)},
    )
    def create(self, request):
        data = self._input(NodeCreateSerializer)
        if data["placement"] is not None:
            data["placement"] = dict(data["placement"])
        change = node_create(**data, actor=request.user, source=Source.API)
        location = request.build_absolute_uri(reverse("node-detail", args=[change.node.pk]))
        return Response(
            NodeSerializer(change.node).data, status=status.HTTP_201_CREATED, headers={"Location": location}
        )

    @extend_schema(
        summary="Plan where nodes would be placed (nothing is written)",
        description="The n-th node counts the n-1 before it on the same host; `placements` is shorter "
        "than `count` when the fleet runs out, and `error` says what the first unplaced node would get.",
        request=PlacementPlanInputSerializer,
        responses={200: PlacementPlanSerializer, **problems(400, 401, 403, 404, 411, 413, 415, 422, 503)},
    )
    @action(detail=False, methods=["post"])
    def placement(self, request):
        serializer = PlacementPlanInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        if data["placement"] is not None:
            data["placement"] = dict(data["placement"])
        return Response(PlacementPlanSerializer(node_placement_plan(**data)).data)

    @extend_schema(
        summary="Turn a node's auto-upgrade on or off (the one field changed in place)",
        request=NodeAutoUpgradeSerializer,
        responses={200: NodeSerializer, **problems(400, 401, 403, 404, 413, 415, 503)},
    )
    def partial_update(self, request, pk):
        serializer = NodeAutoUpgradeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        node = self.get_object()
        nodes_auto_upgrade_set(node_ids=[node.pk], auto_upgrade=serializer.validated_data["auto_upgrade"])
        node.refresh_from_db()
        return Response(NodeSerializer(node).data)

    @extend_schema(
        summary="Delete a node",
        request=None,
        responses={204: OpenApiResponse(description="Deleted"), **problems(400, 401, 403, 404, 409, 503)},
    )
    def destroy(self, request, pk):
        node_delete(node_id=pk, actor=request.user, source=Source.API)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Upgrade a node to another image (or plan it with dry_run)",
        request=NodeUpgradeSerializer,
        responses={
            200: OpenApiResponse(
                UpgradePlanSerializer,
                description="The upgrade applied; with dry_run, the plan (adds `fits` and `error`).",
            ),
            **problems(400, 401, 403, 404, 409, 411, 413, 415, 422, 503),
        },
    )
    @action(detail=True, methods=["post"])
    def upgrade(self, request, pk):
        data = self._input(NodeUpgradeSerializer)
        if data["dry_run"]:
            plan = node_upgrade_plan(node_id=pk, image_id=data["image_id"], force=data["force"])
            return Response(UpgradePlanSerializer(plan).data)
        outcome = node_upgrade(
            node_id=pk, image_id=data["image_id"], force=data["force"], actor=request.user, source=Source.API
        )
        return Response(UpgradeSerializer(outcome).data)


class CommandCancelView(APIView):
    """Support closes an open agent command as `cancelled` (§9)."""

    permission_classes = [IsAuthenticated, model_permission("nodes.cancel_command")]

    @extend_schema(
        summary="Cancel an open agent command",
        description="Closes the command as `cancelled`. An acked command's node becomes `failed`; a "
        "pending upgrade's node goes back to its `from` side; a pending create's node becomes "
        "`failed`. A closed command: 409 `invalid_state`.",
        request=EmptyBodySerializer,
        responses={200: CommandSerializer, **problems(400, 401, 403, 404, 409, 413, 415, 503)},
    )
    def post(self, request, pk: int):
        EmptyBodySerializer(data=request.data if request.data is not None else {}).is_valid(raise_exception=True)
        change = command_cancel(command_id=pk, actor=request.user, source=Source.API)
        return Response(CommandSerializer(change.command).data)
