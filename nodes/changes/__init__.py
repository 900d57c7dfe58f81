"""Changes to nodes: create, named or placed (create.py), upgrade with its plan and its
one-statement write (upgrade.py), delete (delete.py), placement's plan and headroom
(placement.py), the write and logging helpers they share (common.py), and the
hooks other rooms receive (signals.py: a node deleted, a command closed). The API, the admin, the
commands, the agent's lifecycle and the rollouts use the public names re-exported here."""

from nodes.changes.common import NodeChange, allocation_fields, image_spec, log_node_event
from nodes.changes.create import node_create, node_requirement
from nodes.changes.delete import node_delete
from nodes.changes.placement import (
    ImageHeadroom,
    NodePlacementPlan,
    image_headroom,
    images_headroom,
    node_placement_plan,
)
from nodes.changes.upgrade import UpgradeOutcome, node_upgrade, node_upgrade_plan, upgrade_outcome

__all__ = [
    "ImageHeadroom",
    "NodeChange",
    "NodePlacementPlan",
    "UpgradeOutcome",
    "allocation_fields",
    "image_headroom",
    "image_spec",
    "images_headroom",
    "log_node_event",
    "node_create",
    "node_delete",
    "node_placement_plan",
    "node_requirement",
    "node_upgrade",
    "node_upgrade_plan",
    "upgrade_outcome",
]
