"""A fleet built by hand for the fleet page (§12): three regions with reserves, ratios and slot
limits, every node state, every open command status, an overdue command, an offline host,
rollouts in three states, audit runs with and without findings, and outcomes inside and outside
the last 24 hours. Shared by the selector's, the API's and the browser's tests."""

from datetime import timedelta
from types import SimpleNamespace

from django.utils import timezone

from hosts.agent_tokens import agent_token_issue
from hosts.audit_record import audit_run_record
from hosts.models import AuditRun, Host
from nodes.agent.lifecycle import command_ack
from nodes.changes import node_upgrade
from nodes.models import Command, CommandStatus, NodeLog
from nodes.rollouts.models import Rollout, RolloutNode
from tests.factories import GiB, HostFactory, ImageFactory, TiB, place_node, report


def build_fleet():
    old = ImageFactory(
        protocol="ethereum", version="1.9.0", min_cpu_cores=2, min_memory_bytes=8 * GiB, min_disk_bytes=100 * GiB
    )
    new = ImageFactory(
        protocol="ethereum", version="1.10.0", min_cpu_cores=4, min_memory_bytes=16 * GiB, min_disk_bytes=100 * GiB
    )
    btc = ImageFactory(
        protocol="bitcoin", version="27.0", min_cpu_cores=1, min_memory_bytes=4 * GiB, min_disk_bytes=TiB
    )
    # eu-1: reserves and ratios; allocatable cpu (64-4)*2 = 120, memory (256-16)*1.5 GiB = 360 GiB.
    a1 = HostFactory(
        name="eu-a1",
        region="eu-1",
        reserved_cpu_cores=4,
        cpu_allocation_ratio="2",
        reserved_memory_bytes=16 * GiB,
        memory_allocation_ratio="1.5",
    )
    # eu-1, two node slots, draining later.
    a2 = HostFactory(name="eu-a2", region="eu-1", cpu_cores=16, memory_bytes=64 * GiB, disk_bytes=4 * TiB, max_nodes=2)
    # us-1: manual, with an agent that was never seen (offline).
    b1 = HostFactory(name="us-b1", region="us-1", scheduling="manual", max_nodes=10, disk_bytes=2 * TiB)
    # no region: nearly full of cpu.
    c1 = HostFactory(name="zz-c1", cpu_cores=8, memory_bytes=64 * GiB, disk_bytes=4 * TiB)

    running = [place_node(host=a1, image=old, name=f"eth-{n}") for n in range(3)]
    running.append(place_node(host=a2, image=btc, name="btc-0"))
    running.append(place_node(host=b1, image=btc, name="btc-1"))
    running += [place_node(host=c1, image=old, name=f"eth-c{n}") for n in range(3)]  # 6 of 8 cores
    creating = place_node(host=b1, image=old, name="eth-creating", running=False)  # node_create pending
    upgrading = running[0]
    node_upgrade(node_id=upgrading.pk, image_id=new.pk)  # node_upgrade pending -> then acked
    command_ack(command_id=Command.objects.get(node_id=upgrading.pk, status=CommandStatus.PENDING).pk, host_id=a1.pk)
    failed = running[1]
    node_upgrade(node_id=failed.pk, image_id=new.pk)
    report(failed, "failed", message="disk full")
    rolled = running[6]
    node_upgrade(node_id=rolled.pk, image_id=new.pk)
    report(rolled, "rolled_back")
    # The creating node's command waits past AGENT_ACK_TIMEOUT: overdue.
    Command.objects.filter(node_id=creating.pk).update(created_at=timezone.now() - timedelta(hours=2))
    # An outcome older than 24 hours does not count.
    NodeLog.objects.filter(node_id=running[2].pk, event="create_succeeded").update(
        created_at=timezone.now() - timedelta(hours=30)
    )
    agent_token_issue(host=b1)
    Host.objects.filter(pk=a2.pk).update(scheduling="draining")
    # eu-a2 holds 1 node; max_nodes 0 makes it over-allocated (past its slots).
    Host.objects.filter(pk=a2.pk).update(max_nodes=0)

    for state, statuses in (
        ("running", ["succeeded", "succeeded", "pending"]),
        ("paused", ["succeeded", "pending"]),
        ("halted", ["failed", "rolled_back", "pending"]),
    ):
        rollout = Rollout.objects.create(image=new, state=state, batches=2, current_batch=1)
        for position, status in enumerate(statuses):
            node = running[3 + position]
            RolloutNode.objects.create(
                rollout=rollout,
                node_id=node.pk,
                node_name=node.name,
                host_id=node.host_id,
                host_name="x",
                position=position,
                batch=1,
                status=status,
                holds_node=False,
            )
    Rollout.objects.create(image=new, state="completed")

    first = audit_run_record(host_findings=[], hosts_checked=4, nodes_checked=9, node_findings=0)
    AuditRun.objects.filter(pk=first.pk).update(created_at=timezone.now() - timedelta(hours=1))
    finding = SimpleNamespace(host_id=c1.pk, field="node_cpu_cores", recorded=9, expected=6)
    count = SimpleNamespace(host_id=c1.pk, field="node_count", recorded=4, expected=3)
    other = SimpleNamespace(host_id=a1.pk, field="node_memory_bytes", recorded=1, expected=0)
    last = audit_run_record(host_findings=[finding, count, other], hosts_checked=4, nodes_checked=9, node_findings=1)
    AuditRun.objects.filter(pk=last.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    return SimpleNamespace(
        hosts={h.name: h for h in (a1, a2, b1, c1)},
        images=SimpleNamespace(old=old, new=new, btc=btc),
        creating=creating,
        upgrading=upgrading,
        failed=failed,
        rolled=rolled,
    )
