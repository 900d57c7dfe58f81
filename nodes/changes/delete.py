"""node_delete: node and host locked, counters shrink by the node's allocation, its open commands
superseded, a node_delete Command and NodeLog written; rollouts hear of it (nodes.changes.signals)."""

import logging

from django.db import transaction

from config.db import atomic_with_retry
from config.http.logging import log_event
from hosts.counters import host_counters_apply
from hosts.models import Source
from nodes.changes.common import (
    NodeChange,
    _actor_name,
    _close_open_commands,
    _command,
    _lock_node,
    _refusals_logged,
    allocation_fields,
    log_node_event,
)
from nodes.changes.signals import node_deleted
from nodes.models import CommandKind, Node, NodeEvent
from nodes.resources import Resources

logger = logging.getLogger("nodes.services")  # the services' log lines keep their name


@_refusals_logged("delete_refused", node="node_id")
def node_delete(*, node_id, actor=None, source: str = Source.API) -> NodeChange:
    """Removes a node, whatever its state: counters -= its allocation and node_count - 1 (refused
    with `counter_drift` if one would go below zero), its open commands close as `superseded`,
    NodeLog `deleted`, Command `node_delete` (payload: the node's name and image)."""

    def work() -> NodeChange:
        node = _lock_node(node_id)
        allocation = Resources.of(node)
        host = host_counters_apply(host=node.host, delta=Resources() - allocation, node_count_delta=-1)
        Node.objects.filter(pk=node.pk).delete()
        log_node_event(
            NodeEvent.DELETED,
            node,
            host,
            actor=actor,
            source=source,
            old_image_id=node.image_id,
            **allocation_fields("old_", allocation),
        )
        _close_open_commands(node)
        _command(CommandKind.NODE_DELETE, node, host, {"name": node.name, "image_id": str(node.image_id)})
        node_deleted.send(sender=Node, node_id=node.pk)  # §10: rollouts let go of it (nodes.rollouts.hooks)
        transaction.on_commit(
            lambda: log_event(
                logger,
                "node_deleted",
                node=node.name,
                host=host.name,
                allocation=allocation.as_dict(),
                actor=_actor_name(actor),
                source=source,
            )
        )
        return NodeChange(node=node, host=host)

    return atomic_with_retry(work)
