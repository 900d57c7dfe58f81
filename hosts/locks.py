"""Row locks, and THE lock order every writer keeps, written here once.

    0. a rollout's row (nodes.rollouts: its advance and its controls), before anything below;
    1. a node's row, then its host's row (taken together by one statement);
    2. several hosts: in primary-key order;
    3. then a command's row (§9), after the node and host it concerns;
    4. rollout-node rows (UPDATEs only, by every writer that moves them, after 0-3).

Images are leaf locks: a writer that places a node on an image, or moves one to it, holds FOR
KEY SHARE on the image's row (nodes.locks.share_image) and an image's writers (FOR UPDATE)
never lock a host, so an image lock never waits on a host lock of the same transaction.

Placement (hosts.placement, §11) reads the image (its share lock) before it locks a host, and
holds AT MOST ONE host lock at any time: it locks one candidate by primary key (SKIP LOCKED
among the best few, or waiting for the best), and a candidate that no longer fits under the
lock is released (ROLLBACK TO SAVEPOINT) before the next is tried. hosts.services.host_update
locks its host alone (lock_host), as a node change does.

Writers: node_create locks its host (named, or chosen by placement); node_delete locks the node
with its host (lock_with_host);
node_upgrade does the same in the one statement of nodes/locks.py that also reads both images;
the node allocation repair (--fix-nodes) locks each node with its host too; the counter repair
locks hosts only, in pk order, one batch per transaction. The agent outcomes and cancels of
nodes.agent.lifecycle lock node, host and command in one statement (nodes.locks.command_with_node);
an ack locks its command's row alone (it changes nothing else), and node writers close a
`pending` command with an UPDATE conditional on its status, so an ack never needs the node.
No writer locks a node while holding a host lock of another statement, nor a node or host
while holding a command's lock, so waits always point the same way and cannot form a cycle.
A rollout's advance locks its rollout's row (FOR SHARE: its workers upgrade nodes side by
side; its controls and batch decisions take FOR NO KEY UPDATE), then calls node_upgrade (1-3),
then moves the node's rollout row (4); the agent lifecycle and node_delete lock (1-3) and then
move rollout rows (4), never the rollout's row.
Locks are FOR NO KEY UPDATE: they keep out other writers of the row but not inserts of rows
that reference it (NodeLog, Command), which would otherwise queue behind the counters.
Every helper evaluates its queryset: an unevaluated one takes no lock.
"""

from collections.abc import Iterable

from django.db.models import QuerySet

from config.http.metrics import LOCK_WAIT_SECONDS, timed
from hosts.models import Host


def lock_with_host(queryset: QuerySet, pk):
    """Locks one row of a model with a `host` FK together with its host; returns it, host joined."""
    with timed(LOCK_WAIT_SECONDS):
        return queryset.select_related("host").select_for_update(of=("self", "host"), no_key=True).get(pk=pk)


def lock_host(pk) -> Host:
    with timed(LOCK_WAIT_SECONDS):
        return Host.objects.select_for_update(no_key=True).get(pk=pk)


def lock_hosts(pks: Iterable) -> list[Host]:
    """Locks several hosts in primary-key order; returns them in that order."""
    with timed(LOCK_WAIT_SECONDS):
        return list(Host.objects.filter(pk__in=list(pks)).order_by("pk").select_for_update(no_key=True))
