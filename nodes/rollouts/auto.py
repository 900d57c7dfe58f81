"""Auto-upgrade (§10): nodes that follow their protocol's newer images on their own. Adding an
image newer (PEP 440 order, same major, same protocol) than such nodes' version creates a
rollout for them — `planned`, or started at once with AUTO_UPGRADE_START."""

from django.conf import settings
from django.db import transaction
from packaging.version import InvalidVersion, Version

from config.errors import InvalidInput
from nodes.models import Image, Node
from nodes.rollouts.models import Rollout
from nodes.rollouts.plan import SELECTABLE_STATES, selection_check
from nodes.rollouts.services import rollout_create


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def auto_upgrade_candidates(image: Image) -> list:
    """Ids of the auto_upgrade nodes of the image's protocol on an older version of its major."""
    target = _version(image.version)
    if target is None:
        return []
    older = [
        pk
        for pk, version in Image.objects.filter(protocol=image.protocol)
        .exclude(pk=image.pk)
        .values_list("pk", "version")
        if (v := _version(version)) is not None and v.major == target.major and v < target
    ]
    return list(
        Node.objects.filter(image_id__in=older, auto_upgrade=True, state__in=SELECTABLE_STATES)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def rollout_auto_create(*, image: Image, actor=None) -> Rollout | None:
    """The rollout of a newly added image for the auto_upgrade nodes it is newer for (None when
    there are none): planned, or started when settings.AUTO_UPGRADE_START."""
    node_ids = auto_upgrade_candidates(image)
    if not node_ids:
        return None
    selection = selection_check(image_id=image.pk, node_ids=node_ids)
    return rollout_create(selection=selection, start=settings.AUTO_UPGRADE_START, actor=actor, auto=True)


def nodes_auto_upgrade_set(*, node_ids, auto_upgrade: bool) -> int:
    """Sets the auto_upgrade flag of these nodes (the one field a client changes in place);
    returns how many rows it changed. The flag touches no allocation: no lock order involved."""
    if not isinstance(auto_upgrade, bool):
        raise InvalidInput("auto_upgrade must be true or false.", errors={"auto_upgrade": ["Must be a boolean."]})
    with transaction.atomic():
        return (
            Node.objects.filter(pk__in=list(node_ids))
            .exclude(auto_upgrade=auto_upgrade)
            .update(auto_upgrade=auto_upgrade)
        )
