"""The nodes' admin: images (images.py), nodes with their plans and bulk actions (nodes.py,
bulk.py), the node log and commands (history.py), what those share (display.py), the admin's
forms and its own pages (forms.py, views.py: the fleet audit). Thin: it calls the services of
nodes.changes, nodes.agent and nodes.rollouts and shows their refusals as messages."""

from nodes.admin import history, images, nodes  # noqa: F401 -- register the images', nodes' and history's admin
from nodes.rollouts import admin as rollouts_admin  # noqa: F401 -- registers the rollouts' admin
