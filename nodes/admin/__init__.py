"""The nodes' admin: images and nodes (with their plans and bulk actions), the node log and
commands (history), the admin's forms and its own pages (fleet audit). Thin: it calls the services
of nodes.changes, nodes.agent and nodes.rollouts and shows their refusals as messages."""

from nodes.admin import nodes  # noqa: F401 -- registers the images', nodes', history's and rollouts' admin
