"""The agent lifecycle reviewed for stalls (issue 19): an agent's result on a rollout's command
commits whole — the command, the node, the rollout's row and its advance — or not at all, so a
failed statement leaves the command open (the agent's retry of the same result applies it) and
never a closed command whose rollout row waits, or a row that moved with no advance to follow."""

import pytest
from django.db import DatabaseError, connection
from django_tasks_db.models import DBTaskResult

from nodes.agent.lifecycle import command_ack, command_result
from nodes.models import Command, Node
from nodes.rollouts.models import RolloutNode
from nodes.rollouts.plan import selection_check
from nodes.rollouts.services import rollout_create
from tests.factories import GiB, HostFactory, ImageFactory, TiB
from tests.nodes.rollouts.support import running_node, work
from tests.nodes.test_failures import failing_at
from tests.support import fleet_snapshot

pytestmark = pytest.mark.django_db(transaction=True)

TASKS = 'INSERT INTO "django_tasks_database_dbtaskresult"'


@pytest.fixture
def rollout_command():
    spec = {"protocol": "eth", "min_cpu_cores": 2, "min_memory_bytes": GiB, "min_disk_bytes": GiB}
    v1, v2 = ImageFactory(version="1.0", **spec), ImageFactory(version="2.0", **spec)
    host = HostFactory(cpu_cores=64, memory_bytes=64 * GiB, disk_bytes=TiB)
    running_node(host=host, image=v1, name="n1")
    rollout_create(selection=selection_check(image_id=v2.pk, canary=0), start=True)
    work()
    command = Command.objects.get(kind="node_upgrade", status="pending")
    command_ack(command_id=command.pk, host_id=command.host_id)
    return command


def state() -> dict:
    return {
        **fleet_snapshot(),
        "command_rows": list(Command.objects.order_by("pk").values("pk", "status")),
        "rollout_rows": list(RolloutNode.objects.values("status", "reason")),
        "tasks": list(DBTaskResult.objects.values("status")),
    }


@pytest.mark.parametrize("statement", ['UPDATE "nodes_command"', 'UPDATE "nodes_rolloutnode"', TASKS])
def test_a_result_that_fails_at_any_statement_leaves_the_command_open_and_applies_again(rollout_command, statement):
    before = state()
    with connection.execute_wrapper(failing_at(statement)), pytest.raises(DatabaseError):
        command_result(command_id=rollout_command.pk, host_id=rollout_command.host_id, outcome="succeeded")
    assert state() == before  # nothing half-written: the command is still acked, the row upgrading

    command_result(command_id=rollout_command.pk, host_id=rollout_command.host_id, outcome="succeeded")
    assert RolloutNode.objects.get().status == "succeeded"
    assert Node.objects.get().state == "running"
    work()  # the advance the result enqueued completes the rollout
    assert RolloutNode.objects.get().rollout.state == "completed"
