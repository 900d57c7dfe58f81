"""Changes to nodes: create, upgrade (its plan and its one-statement write), delete, and the
write and logging helpers they share. The public functions, which the API, the admin, the commands,
the agent's lifecycle and the rollouts call, are re-exported here."""

from nodes.changes.upgrade import node_create, node_delete, node_upgrade, node_upgrade_plan

__all__ = ["node_create", "node_delete", "node_upgrade", "node_upgrade_plan"]
