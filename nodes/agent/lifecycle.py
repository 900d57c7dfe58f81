"""Services for what host agents report and what support does about their commands (§9):
command_ack, command_result, command_cancel.

Each runs in one transaction. Whatever changes a node or the counters locks the node, then its
host, then the command (nodes.locks.command_with_node, in one statement: the lock order of
hosts.locks); the counters move by SQL deltas (hosts.counters); the command's status and the
node's state change only through the transition tables of nodes.models. The ack changes the
command alone and locks only its row: a writer holding the node's lock closes a `pending`
command with a write conditional on its status (nodes.changes.upgrade), so the two never disagree.
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from config.db import atomic_with_retry
from config.db.statements import update_row
from config.errors import ApplicationError, CommandClosed, InvalidInput, InvalidState, NotFound
from config.http.logging import log_event
from config.http.metrics import AGENT_RESULTS
from hosts.counters import host_counters_check, host_counters_write
from hosts.models import Host, Source
from nodes.changes import allocation_fields, log_node_event
from nodes.changes.signals import command_closed
from nodes.locks import command_with_node, share_image_if_exists
from nodes.models import (
    OUTCOMES_OF_KIND,
    RETRY_LATER,
    Command,
    CommandKind,
    CommandStatus,
    Node,
    NodeEvent,
    NodeState,
    command_status_transition,
    node_state_transition,
)
from nodes.resources import Resources

logger = logging.getLogger("nodes.lifecycle")

MESSAGE_MAX_LENGTH = 2000
RETRY_AFTER_RANGE = (1, 86400)


@dataclass(frozen=True)
class CommandChange:
    """A command after an ack, result or cancel; its node (None once deleted); `changed` is False
    when the call repeated what was already recorded (an idempotent repeat)."""

    command: Command
    node: Node | None
    changed: bool = True


def _command_pk(command_id) -> int:
    if isinstance(command_id, int) and not isinstance(command_id, bool) and command_id > 0:
        return command_id
    if isinstance(command_id, str) and command_id.isascii() and command_id.isdigit() and len(command_id) < 19:
        return int(command_id)
    raise NotFound(f"No command with id {command_id!r}.")


def _not_found(command_id) -> NotFound:
    return NotFound(f"No command with id {command_id}.")


def _write_command(command: Command, **values) -> None:
    update_row(Command, command.pk, **values)
    for name, value in values.items():
        setattr(command, name, value)


def _write_node(node: Node, **values) -> None:
    values["updated_at"] = timezone.now()
    update_row(Node, node.pk, **values)
    for name, value in values.items():
        setattr(node, name, value)


# ---------------------------------------------------------------------------------------------
# Ack


def command_ack(*, command_id, host_id) -> CommandChange:
    """`pending` → `acked` (acked_at) for a command of the agent's host. Again on an acked
    command: no change. On a closed one: `command_closed`. Another host's: `not_found`."""
    pk = _command_pk(command_id)

    def work() -> CommandChange:
        command = Command.objects.select_for_update(no_key=True).filter(pk=pk, host_id=host_id).first()
        if command is None:
            raise _not_found(pk)
        if command.status == CommandStatus.ACKED:
            return CommandChange(command, None, changed=False)
        if not command.is_open:
            raise CommandClosed(
                f"Command {pk} is already {command.status}; there is nothing to acknowledge.",
                command_status=command.status,
            )
        command_status_transition(command, CommandStatus.ACKED)
        _write_command(command, status=command.status, acked_at=timezone.now())
        return CommandChange(command, None)

    return atomic_with_retry(work)


# ---------------------------------------------------------------------------------------------
# Rollback: the host runs the `from` side of an upgrade again


@dataclass(frozen=True)
class _Side:
    image_id: uuid.UUID
    properties: object
    allocation: Resources


def _from_side(command: Command) -> _Side:
    """The `from` side of an upgrade command's payload; `invalid_state` if it is unusable (a
    command written before §9, or altered by hand)."""
    side = (command.payload or {}).get("from") if isinstance(command.payload, dict) else None
    try:
        allocation = side["allocation"]
        amounts = Resources(*(allocation[name] for name in ("cpu_cores", "memory_bytes", "disk_bytes")))
        if not all(isinstance(amount, int) and not isinstance(amount, bool) and amount >= 0 for amount in amounts):
            raise ValueError
        return _Side(uuid.UUID(str(side["image_id"])), side.get("properties"), amounts)
    except (KeyError, TypeError, ValueError, AttributeError):
        raise InvalidState(
            f"Command {command.pk} holds no usable `from` side: the node cannot be put back.", state=command.status
        ) from None


def _roll_back(command: Command, node: Node) -> tuple[_Side | None, ApplicationError | None]:
    """Puts the node back on the command's `from` side: image, config, allocation, `running`;
    counters += from - the node's recorded allocation. No capacity check (the host already
    holds the `from` side); overflow and drift are still checked. Returns (the side, None), or
    (None, the refusal) having written nothing: the caller then marks the node `failed`."""
    try:
        side = _from_side(command)
        side.allocation.check_within_bigint(f"Node {node.name} rolled back")
    except ApplicationError as error:
        return None, error
    if side.image_id != node.image_id and not share_image_if_exists(side.image_id):
        return None, InvalidState(
            f"Image {side.image_id} of the node's `from` side no longer exists: node {node.name} cannot be put back.",
            state=command.status,
        )
    check = host_counters_check(
        host=node.host, delta=side.allocation - Resources.of(node), node_count_delta=0, force=True
    )
    if check.error:
        return None, check.error
    host_counters_write(host=node.host, check=check)
    node_state_transition(node, NodeState.RUNNING)
    _write_node(node, image_id=side.image_id, properties=side.properties, state=node.state, **side.allocation.as_dict())
    return side, None


def _log_rollback(event, command, node, before: tuple, *, message, actor=None, source=Source.API):
    """NodeLog of a rollback (or of its refusal): old = the `to` side the node was on, new =
    where it is now."""
    old_image_id, old_allocation = before
    log_node_event(
        event,
        node,
        node.host,
        actor=actor,
        source=source,
        command_id=command.pk,
        message=message,
        old_image_id=old_image_id,
        new_image_id=node.image_id,
        **allocation_fields("old_", old_allocation),
        **allocation_fields("new_", Resources.of(node)),
    )


def _joined(*parts: str) -> str:
    return "\n".join(part for part in parts if part)


# ---------------------------------------------------------------------------------------------
# Result


def _validate_result(command: Command, outcome: str, message: str, retry_after_seconds) -> None:
    errors = {}
    if outcome not in OUTCOMES_OF_KIND.get(command.kind, ()):
        allowed = ", ".join(OUTCOMES_OF_KIND.get(command.kind, ())) or "none (unknown kind)"
        errors["outcome"] = [f"A {command.kind} command's outcome is one of: {allowed}."]
    if not isinstance(message, str) or len(message) > MESSAGE_MAX_LENGTH:
        errors["message"] = [f"At most {MESSAGE_MAX_LENGTH} characters."]
    low, high = RETRY_AFTER_RANGE
    if outcome == RETRY_LATER:
        valid = isinstance(retry_after_seconds, int) and not isinstance(retry_after_seconds, bool)
        if not (valid and low <= retry_after_seconds <= high):
            errors["retry_after_seconds"] = [f"Required with retry_later: an integer from {low} to {high}."]
    elif retry_after_seconds is not None:
        errors["retry_after_seconds"] = ["Only with the outcome retry_later."]
    if errors:
        raise InvalidInput(f"Invalid result for command {command.pk}: {', '.join(errors)}.", errors=errors)


def command_result(
    *, command_id, host_id, outcome: str, message: str = "", retry_after_seconds: int | None = None
) -> CommandChange:
    """Closes a command of the agent's host with its outcome (§9's table), in one transaction
    holding the node's, the host's and the command's locks in that order; or, with
    `retry_later`, returns it to `pending`, hidden until `not_before`, attempts + 1.

    The same outcome again: no change. Another outcome on a closed command: `command_closed`.
    An outcome the kind does not have, a message over 2,000 characters, `retry_after_seconds`
    missing with `retry_later` (or present with another outcome): `invalid`.

    Rollouts (§10): the rollout's node row follows the outcome inside this transaction, after
    the outcome is applied (nodes.changes.signals.command_closed, which
    nodes.rollouts.hooks.rollout_upgrade_closed receives), and the rollout's advance is enqueued with it."""
    pk = _command_pk(command_id)

    def work() -> CommandChange:
        command, node = command_with_node(pk, host_id)
        if command is None:
            raise _not_found(pk)
        _validate_result(command, outcome, message, retry_after_seconds)
        if not command.is_open:
            if command.status == outcome:
                return CommandChange(command, node, changed=False)
            raise CommandClosed(
                f"Command {pk} is already {command.status}; the outcome {outcome} cannot apply.",
                command_status=command.status,
            )
        if outcome == RETRY_LATER:
            command_status_transition(command, CommandStatus.PENDING)
            _write_command(
                command,
                status=command.status,
                attempts=command.attempts + 1,
                not_before=timezone.now() + timedelta(seconds=retry_after_seconds),
                message=message,
            )
            transaction.on_commit(lambda: _count_result(command, outcome))
            return CommandChange(command, node)
        change = _apply_outcome(command, node, outcome, message)
        command_closed.send(sender=Command, command=change.command, node=change.node)  # §10: the rollout's row follows
        transaction.on_commit(lambda: _count_result(command, outcome))
        return change

    return atomic_with_retry(work)


def _count_result(command: Command, outcome: str) -> None:
    AGENT_RESULTS.labels(kind=command.kind, outcome=outcome).inc()
    log_event(logger, "command_result", command=command.pk, kind=command.kind, outcome=outcome)


_CLOSING_EVENTS = {
    (CommandKind.NODE_CREATE, CommandStatus.SUCCEEDED): (NodeState.RUNNING, NodeEvent.CREATE_SUCCEEDED),
    (CommandKind.NODE_CREATE, CommandStatus.FAILED): (NodeState.FAILED, NodeEvent.CREATE_FAILED),
    (CommandKind.NODE_UPGRADE, CommandStatus.SUCCEEDED): (NodeState.RUNNING, NodeEvent.UPGRADE_SUCCEEDED),
    (CommandKind.NODE_UPGRADE, CommandStatus.FAILED): (NodeState.FAILED, NodeEvent.UPGRADE_FAILED),
}


def _apply_outcome(command: Command, node: Node | None, outcome: str, message: str) -> CommandChange:
    """Closes an open command with `outcome` and applies it to the node (§9's table)."""
    command_status_transition(command, outcome)
    _write_command(command, status=command.status, finished_at=timezone.now(), message=message)
    if command.kind == CommandKind.NODE_DELETE:
        if outcome == CommandStatus.FAILED:
            _log_without_node(NodeEvent.DELETE_FAILED, command, message=message)
        return CommandChange(command, None)
    if node is None:  # an open create/upgrade command always has its node (a delete closes them)
        raise InvalidState(f"The node of command {command.pk} no longer exists.", state=command.status)
    if outcome == CommandStatus.ROLLED_BACK:
        before = (node.image_id, Resources.of(node))
        _side, refusal = _roll_back(command, node)
        if refusal is None:
            _log_rollback(NodeEvent.UPGRADE_ROLLED_BACK, command, node, before, message=message)
        else:
            node_state_transition(node, NodeState.FAILED)
            _write_node(node, state=node.state)
            detail = _joined(f"The rollback could not be applied: {refusal.detail}", message and f"Agent: {message}")
            _log_rollback(NodeEvent.UPGRADE_FAILED, command, node, before, message=detail)
        return CommandChange(command, node)
    state, event = _CLOSING_EVENTS[(command.kind, outcome)]
    node_state_transition(node, state)
    _write_node(node, state=node.state)
    log_node_event(
        event,
        node,
        node.host,
        actor=None,
        source=Source.API,
        command_id=command.pk,
        message=message,
        new_image_id=node.image_id,
        **allocation_fields("new_", Resources.of(node)),
    )
    return CommandChange(command, node)


def _log_without_node(event: str, command: Command, *, message: str, actor=None, source=Source.API) -> None:
    """NodeLog of a command whose node is gone: by node id, with the name its payload kept."""
    payload = command.payload if isinstance(command.payload, dict) else {}
    ghost = Node(pk=command.node_id, name=str(payload.get("name", "")))
    host = Host.objects.only("pk", "name").get(pk=command.host_id)
    log_node_event(event, ghost, host, actor=actor, source=source, command_id=command.pk, message=message)


# ---------------------------------------------------------------------------------------------
# Cancel


def command_cancel(*, command_id, actor=None, source: str = Source.API) -> CommandChange:
    """Support closes an open command as `cancelled` (NodeLog `command_cancelled`). An `acked`
    command's node becomes `failed` (what it runs is unknown); a `pending` upgrade puts the node
    back on its `from` side as a rollback does (refused: `failed`, the reason in the NodeLog); a
    `pending` create leaves the node `failed` (support deletes it). A closed command:
    `invalid_state`."""
    pk = _command_pk(command_id)

    def work() -> CommandChange:
        command, node = command_with_node(pk)
        if command is None:
            raise _not_found(pk)
        if not command.is_open:
            raise InvalidState(
                f"Command {pk} is already {command.status}; only an open command can be cancelled.",
                state=command.status,
            )
        was = command.status
        command_status_transition(command, CommandStatus.CANCELLED)
        _write_command(command, status=command.status, finished_at=timezone.now())
        if node is None:
            _log_without_node(NodeEvent.COMMAND_CANCELLED, command, message="", actor=actor, source=source)
            return CommandChange(command, None)
        before = (node.image_id, Resources.of(node))
        note = ""
        if was == CommandStatus.PENDING and command.kind == CommandKind.NODE_UPGRADE:
            _side, refusal = _roll_back(command, node)
            if refusal is not None:
                note = f"The node could not be put back on its previous side: {refusal.detail}"
        if node.state != NodeState.RUNNING:  # all but a pending upgrade put back
            node_state_transition(node, NodeState.FAILED)
            _write_node(node, state=node.state)
        _log_rollback(NodeEvent.COMMAND_CANCELLED, command, node, before, message=note, actor=actor, source=source)
        command_closed.send(sender=Command, command=command, node=node)  # §10: the rollout's row follows
        transaction.on_commit(
            lambda: log_event(logger, "command_cancelled", command=pk, kind=command.kind, status_was=was, source=source)
        )
        return CommandChange(command, node)

    return atomic_with_retry(work)
