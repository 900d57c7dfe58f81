"""Helpers of the rollout tests: nodes whose agents reported, agents answering, the worker run
in-process until nothing is due."""

from django_tasks.base import TaskResultStatus
from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult

from nodes.agent.lifecycle import command_result
from nodes.models import Command, CommandKind, CommandStatus, Node
from nodes.rollouts.models import Rollout, RolloutNode
from tests.factories import place_node


def report(command_id, outcome: str, message: str = "") -> None:
    """The host's agent reports how a command ended (§9)."""
    command = Command.objects.get(pk=command_id)
    command_result(command_id=command_id, host_id=command.host_id, outcome=outcome, message=message)


def running_node(*, host, image, name=None, properties=None):
    """A node created through the service whose agent reported the creation succeeded."""
    return place_node(host=host, image=image, name=name, properties=properties)


def open_upgrades():
    return list(
        Command.objects.filter(kind=CommandKind.NODE_UPGRADE, status__in=[CommandStatus.PENDING, CommandStatus.ACKED])
        .order_by("id")
        .values_list("pk", "node_id")
    )


def answer(outcome="succeeded", *, only=None) -> int:
    """Agents answer every open upgrade (of the nodes `only`, if given); returns how many."""
    answered = 0
    for command_id, node_id in open_upgrades():
        if only is None or node_id in only:
            report(command_id, outcome(node_id) if callable(outcome) else outcome)
            answered += 1
    return answered


def library_worker() -> Worker:
    """django-tasks-db's worker, to run tasks with (its `run_task`) in this thread."""
    return Worker(
        queue_names=["default"],
        interval=0,
        batch=True,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id="tests",
        excluded_queue_names=[],
    )


def work() -> None:
    """The library's worker runs every task due now, then stops (delayed ticks stay queued). Its
    loop is not used here: it closes the connection, and with it the test's transaction."""
    worker = library_worker()
    while (task := DBTaskResult.objects.ready().first()) is not None:
        task.claim(worker.worker_id)
        worker.run_task(task)
    failed = DBTaskResult.objects.filter(status=TaskResultStatus.FAILED).values_list("traceback", flat=True)
    assert not failed, failed[0]


def drive(rollout, outcome="succeeded", *, rounds=100) -> Rollout:
    """Worker and agents take turns until the rollout stops moving; returns it re-read."""
    for _ in range(rounds):
        work()
        if not answer(outcome):
            break
    work()
    rollout.refresh_from_db()
    return rollout


def rows(rollout) -> dict:
    """{node name: (batch, status)} of a rollout."""
    return {row.node_name: (row.batch, row.status) for row in RolloutNode.objects.filter(rollout=rollout)}


def ready_tasks() -> int:
    """Tasks due now (a delayed tick is not)."""
    return DBTaskResult.objects.ready().count()


def node_states() -> dict:
    return dict(Node.objects.values_list("name", "state"))
