"""What the fleet's commands share: the --host option and scope, and how findings and
changes show: one line per item for a person (exact integers, human units beside them; stored
names with control characters escaped, so no name can forge a line), a JSON object per item for
a machine, and a JSON document written piece by piece, so a large report never sits whole in
memory."""

import json
from collections.abc import Iterable

from django.core.management.base import CommandError

from config.errors import NotFound
from config.text import escape_unprintable
from config.units import human_amount
from hosts.audit import CapacityWarning, HostFinding, hosts_by_id_or_name
from hosts.repair import CounterChange, HostRefusal
from nodes.agent.overdue import OverdueWarning
from nodes.audit import CONFIG_FIELD, NodeFinding
from nodes.repair import AllocationChange


def terminal_safe(line: str) -> str:
    """One output line as a terminal shows it: characters that do not print escaped."""
    return escape_unprintable(line)


def add_host_option(parser, help: str) -> None:
    """The repeatable `--host ID_OR_NAME` option (into `hosts`), as every command spells it."""
    parser.add_argument("--host", action="append", dest="hosts", default=[], metavar="ID_OR_NAME", help=help)


def host_scope(refs: list[str]) -> list | None:
    """The pks of the hosts named by --host (None: the whole fleet); an unknown one is a usage
    error (exit 2)."""
    if not refs:
        return None
    try:
        return [host.pk for host in hosts_by_id_or_name(refs)]
    except NotFound as error:
        raise CommandError(terminal_safe(error.detail), returncode=2) from None


def _human(field: str, amount: int) -> str | None:
    """`8.0 GiB` for a byte amount, `4 cores` for CPU; None for a plain count."""
    resource = field.removeprefix("node_")
    return None if resource == "count" else human_amount(resource, amount)


def amount_text(field: str, amount: object) -> str:
    if field == CONFIG_FIELD or not isinstance(amount, int):
        return json.dumps(amount, sort_keys=True)
    human = _human(field, amount)
    return f"{amount} ({human})" if human else str(amount)


def change_text(field: str, old: object, new: object) -> str:
    return f"{field} {amount_text(field, old)} -> {amount_text(field, new)}"


def finding_line(item: HostFinding | NodeFinding | CapacityWarning | OverdueWarning) -> str:
    return terminal_safe(_finding_text(item))


def _finding_text(item: HostFinding | NodeFinding | CapacityWarning | OverdueWarning) -> str:
    if isinstance(item, OverdueWarning):
        waits_for = "ack" if item.status == "pending" else "result"
        return (
            f"warning: command {item.command_id} ({item.kind}) of node {item.node_id} on host {item.host_name} "
            f"is overdue: {item.status} since {item.since.isoformat()} ({waits_for} timeout {item.timeout_seconds} s)"
        )
    if isinstance(item, CapacityWarning):
        return (
            f"warning: host {item.host_name} is over capacity: {item.resource} allocated "
            f"{amount_text(item.resource, item.allocated)}, capacity {amount_text(item.resource, item.capacity)}"
        )
    subject = (
        f"host {item.host_name}" if isinstance(item, HostFinding) else f"node {item.node_name} on {item.host_name}"
    )
    return (
        f"{subject}: {item.field} recorded {amount_text(item.field, item.recorded)}, "
        f"expected {amount_text(item.field, item.expected)}"
    )


def finding_json(item: HostFinding | NodeFinding | CapacityWarning | OverdueWarning) -> dict:
    if isinstance(item, OverdueWarning):
        return {
            "kind": "overdue_command",
            "command_id": item.command_id,
            "command_kind": item.kind,
            "node_id": str(item.node_id),
            "host_id": str(item.host_id),
            "host": item.host_name,
            "status": item.status,
            "since": item.since.isoformat(),
            "timeout_seconds": item.timeout_seconds,
        }
    if isinstance(item, CapacityWarning):
        return {
            "kind": "over_capacity",
            "host_id": str(item.host_id),
            "host": item.host_name,
            "resource": item.resource,
            "allocated": item.allocated,
            "capacity": item.capacity,
        }
    if isinstance(item, HostFinding):
        subject = {"kind": "host", "host_id": str(item.host_id), "host": item.host_name}
    else:
        subject = {"kind": "node", "node_id": str(item.node_id), "node": item.node_name, "host": item.host_name}
    return {**subject, "field": item.field, "recorded": item.recorded, "expected": item.expected}


def counter_change_line(change: CounterChange, *, dry_run: bool) -> str:
    verb = "would change" if dry_run else "repaired"
    changes = ", ".join(change_text(field, change.old[field], change.new[field]) for field in change.fields)
    return terminal_safe(f"host {change.host_name}: {verb} {changes}")


def counter_change_json(change: CounterChange) -> dict:
    return {"host_id": str(change.host_id), "host": change.host_name, "old": change.old, "new": change.new}


def allocation_change_line(change: AllocationChange, *, dry_run: bool) -> str:
    verb = "would change" if dry_run else "repaired"
    parts = [change_text(CONFIG_FIELD, change.old_config, change.new_config)] if change.config_repaired else []
    parts += [
        change_text(name, change.old[name], change.new[name])
        for name in change.old
        if change.old[name] != change.new[name]
    ]
    return terminal_safe(f"node {change.node_name} on {change.host_name}: {verb} {', '.join(parts)}")


def host_refusal_line(refusal: HostRefusal) -> str:
    return terminal_safe(f"host {refusal.host_name}: not repaired: {refusal.error.detail}")


def host_refusal_json(refusal: HostRefusal) -> dict:
    return {
        "host_id": str(refusal.host_id),
        "host": refusal.host_name,
        "code": refusal.error.code,
        "detail": refusal.error.detail,
    }


def allocation_change_json(change: AllocationChange) -> dict:
    data = {"node_id": str(change.node_id), "node": change.node_name, "host": change.host_name}
    data |= {"old": change.old, "new": change.new}
    if change.config_repaired:
        data |= {"old_properties": change.old_config, "new_properties": change.new_config}
    return data


class JsonDocument:
    """Writes one JSON object to `out` key by key; a list value may be any iterable, written
    item by item as it is produced."""

    def __init__(self, out):
        self.out = out
        self.keys = 0

    def __enter__(self):
        self.out.write("{", ending="")
        return self

    def __exit__(self, *exc):
        self.out.write("}")

    def _key(self, key: str):
        self.out.write(("," if self.keys else "") + f"\n{json.dumps(key)}: ", ending="")
        self.keys += 1

    def value(self, key: str, value) -> None:
        self._key(key)
        self.out.write(json.dumps(value), ending="")

    def items(self, key: str, items: Iterable) -> int:
        """Writes the list under `key`; returns how many items it held."""
        self._key(key)
        self.out.write("[", ending="")
        count = 0
        for item in items:
            self.out.write(("," if count else "") + "\n  " + json.dumps(item), ending="")
            count += 1
        self.out.write("\n]" if count else "]", ending="")
        return count
