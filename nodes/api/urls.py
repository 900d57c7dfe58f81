"""/api/v1/ routes: hosts (read), images (read, add), nodes (read, create, delete, upgrade), cancelling
an agent command."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from nodes.api.views import CommandCancelView, HostViewSet, ImageViewSet, NodeViewSet
from nodes.rollouts.api import RolloutViewSet

router = SimpleRouter(use_regex_path=False)
router.register("hosts", HostViewSet, basename="host")
router.register("images", ImageViewSet, basename="image")
router.register("nodes", NodeViewSet, basename="node")
router.register("rollouts", RolloutViewSet, basename="rollout")

urlpatterns = [
    *router.urls,
    path("commands/<bigint:pk>/cancel/", CommandCancelView.as_view(), name="command-cancel"),
]
