"""§11 from the nodes' side: an image and a config turned into a placement's requirement, for
the plan (POST /api/v1/nodes/placement/, `place_nodes --dry-run`, the admin's "Place nodes…")
and headroom (GET /api/v1/images/{id}/headroom/, `headroom`). Both read host rows only
(hosts.placement) and write nothing; the create itself is nodes.changes.create.node_create."""

import uuid
from dataclasses import dataclass

from config.errors import InvalidInput, NotFound
from hosts.placement import Headroom, PlacementPlan, headroom, placement_plan, requirement_check
from nodes.changes.common import image_spec
from nodes.changes.create import _validate_create_input, node_requirement
from nodes.models import Image
from nodes.resources import ImageSpec, required_allocation


def _spec(image_id) -> ImageSpec:
    try:
        pk = image_id if isinstance(image_id, uuid.UUID) else uuid.UUID(str(image_id))
        return image_spec(Image.objects.prefetch_related("properties").get(pk=pk))
    except (ValueError, Image.DoesNotExist):
        raise NotFound(f"No image with id {image_id}.") from None


@dataclass(frozen=True)
class NodePlacementPlan:
    image: ImageSpec
    plan: PlacementPlan


def node_placement_plan(*, image_id, properties=None, placement=None, count=1) -> NodePlacementPlan:
    """Where `count` nodes of this image and config would go (§11 Plan); nothing is written.
    Refuses what node_create would refuse before choosing a host (input, image, overflow)."""
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 1000:
        raise InvalidInput("count must be an integer from 1 to 1000.", errors={"count": ["From 1 to 1000."]})
    properties = _validate_create_input("plan", properties)
    requirement = requirement_check(requested={}, placement=placement)
    spec = _spec(image_id)
    _config, allocation = node_requirement(spec, properties)
    requirement = requirement_check(requested=allocation.as_dict(), placement=placement, protocol=spec.protocol)
    return NodePlacementPlan(image=spec, plan=placement_plan(requirement, count))


@dataclass(frozen=True)
class ImageHeadroom:
    image: ImageSpec
    headroom: Headroom


def image_headroom(*, image_id, region: str | None = None) -> ImageHeadroom:
    """How many more nodes of the image's default config the automatic hosts take (§11)."""
    spec = _spec(image_id)
    requested = required_allocation(spec.validate(), spec.defaults())
    return ImageHeadroom(image=spec, headroom=headroom(requested.as_dict(), region=region))


def images_headroom(*, image_ids=None, region: str | None = None) -> list[ImageHeadroom]:
    """image_headroom for the given images (ids), or every image by protocol and version."""
    if image_ids is None:
        image_ids = list(Image.objects.order_by("protocol", "version").values_list("pk", flat=True))
    return [image_headroom(image_id=pk, region=region) for pk in image_ids]
