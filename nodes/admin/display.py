"""What the node and history admins share: their list filters (host, protocol, overdue), the
state badge, and how a log entry and an agent command read (old → new, the command's steps)."""

from django.contrib import admin
from django.db.models import Exists, OuterRef
from django.utils.html import format_html, format_html_join

from config.formats import human_datetime
from config.units import RESOURCES, human_amount
from hosts.admin.helpers import TextInputFilter, as_uuid
from nodes.agent.overdue import overdue_condition
from nodes.models import Command, CommandKind, CommandStatus, Image, NodeLog, NodeState


class HostFilter(TextInputFilter):
    title = "host"
    parameter_name = "host"

    def queryset(self, request, queryset):
        value = (self.value() or "").strip()
        if not value:
            return queryset
        pk = as_uuid(value)
        return queryset.filter(host_id=pk) if pk else queryset.filter(host__name=value)


class ProtocolFilter(admin.SimpleListFilter):
    title = "protocol"
    parameter_name = "protocol"

    def lookups(self, request, model_admin):
        protocols = Image.objects.order_by("protocol").values_list("protocol", flat=True).distinct()
        return [(protocol, protocol) for protocol in protocols]

    def queryset(self, request, queryset):
        return queryset.filter(image__protocol=self.value()) if self.value() else queryset


class OverdueFilter(admin.SimpleListFilter):
    """Nodes (or commands) with an open command past its agent timeout (AGENT_ACK_TIMEOUT,
    AGENT_RESULT_TIMEOUT): on the partial index of open commands, whatever the table's size."""

    title = "agent"
    parameter_name = "overdue"

    def lookups(self, request, model_admin):
        return [("yes", "command overdue")]

    def queryset(self, request, queryset):
        if self.value() != "yes":
            return queryset
        if queryset.model is Command:
            return queryset.filter(overdue_condition(), status__in=[CommandStatus.PENDING, CommandStatus.ACKED])
        overdue = Command.objects.filter(
            overdue_condition(), node_id=OuterRef("pk"), status__in=[CommandStatus.PENDING, CommandStatus.ACKED]
        )
        return queryset.filter(Exists(overdue))


def state_badge(value: str, label: str, title: str = ""):
    """A node state or command status as a coloured badge (`nf-state-<value>`)."""
    return format_html('<span class="nf-badge nf-state nf-state-{}" title="{}">{}</span>', value, title, label)


def allocation_text(obj, prefix: str = "") -> str:
    return ", ".join(human_amount(name, getattr(obj, prefix + name)) for name in RESOURCES)


def payload_images(payload) -> list:
    """The image ids (UUIDs or None) an upgrade command's payload names: from, to."""
    if not isinstance(payload, dict):
        return []
    sides = [payload.get("from"), payload.get("to")] if "to" in payload else [payload]
    return [as_uuid(str(side.get("image_id", ""))) if isinstance(side, dict) else None for side in sides]


def command_subject(command: Command, images: dict) -> str:
    """`Upgrade node ethereum@1.0 → ethereum@1.1` from the payload's image ids."""
    labels = [str(images.get(image_id, "?")) for image_id in payload_images(command.payload) if image_id]
    return f"{command.get_kind_display()} {' → '.join(labels)}".strip()


def command_steps(command: Command):
    """`created 10:00:01 → acked 10:00:03 → rolled back 10:00:09`, the open step in bold."""
    steps = [format_html("created {}", _clock(command.created_at))]
    if command.acked_at:
        steps.append(format_html("acked {}", _clock(command.acked_at)))
    if command.status == CommandStatus.PENDING:
        waiting = "retry after " + _clock(command.not_before) if command.not_before else "waiting for the agent"
        steps.append(format_html("<strong>{}</strong>", waiting))
    elif command.status == CommandStatus.ACKED:
        steps.append(format_html("<strong>{}</strong>", "agent working on it"))
    else:
        outcome = state_badge(command.status, command.get_status_display())
        steps.append(format_html("{} {}", outcome, _clock(command.finished_at)) if command.finished_at else outcome)
    return format_html_join(" → ", '<span class="nf-nowrap">{}</span>', ((step,) for step in steps))


def _clock(moment) -> str:
    return human_datetime(moment)


#: Node states in which the node's agent has yet to report: its page refreshes until it has.
IN_FLIGHT_STATES = frozenset({NodeState.CREATING, NodeState.UPGRADING})
#: How the Cancel button names an open command's change.
_CHANGE_NOUNS = {
    CommandKind.NODE_CREATE: "creation",
    CommandKind.NODE_UPGRADE: "upgrade",
    CommandKind.NODE_DELETE: "deletion",
}


def cancel_label(command: Command) -> str:
    """`Cancel the pending upgrade…`, `Cancel the upgrade in progress…` (acked by the agent)."""
    noun = _CHANGE_NOUNS.get(command.kind, "command")
    if command.status == CommandStatus.ACKED:
        return f"Cancel the {noun} in progress…"
    return f"Cancel the pending {noun}…"


def log_change(entry: NodeLog) -> tuple[str, str, str]:
    """(image, allocation, actor) of a log entry as a person reads them: old → new."""
    images = [str(image) for image in (entry.old_image, entry.new_image) if image is not None]
    image = " → ".join(dict.fromkeys(images))
    sides = [
        allocation_text(entry, prefix)
        for prefix in ("old_", "new_")
        if getattr(entry, prefix + "cpu_cores") is not None
    ]
    allocation = " → ".join(sides)
    if entry.forced:
        allocation += " (forced)"
    return image, allocation, f"{entry.actor or '—'} ({entry.get_source_display()})"
