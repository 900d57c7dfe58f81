"""The hooks of node changes, for the rooms that follow them without being imported here (the
rollouts connect their receivers in nodes' AppConfig.ready()). Both are sent inside the caller's
transaction, after its own writes; a receiver's error rolls the change back (Signal.send)."""

from django.dispatch import Signal

#: node_delete deleted a node (keyword: node_id).
node_deleted = Signal()

#: A node_upgrade (or any) command closed: the agent's result or a cancel (keywords: command,
#: node — the node after the outcome, None when it is gone).
command_closed = Signal()
