"""The admin's history of nodes: the node log and the agents' commands (read-only lists), and
support's cancel of open commands (SPEC §9) through nodes.agent.lifecycle.command_cancel."""

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse

from config.errors import ApplicationError
from hosts.admin.helpers import ReadOnlyAdmin, refresh_while
from hosts.models import Source
from nodes.admin.display import OverdueFilter, log_change, state_badge
from nodes.agent.lifecycle import command_cancel
from nodes.models import Command, CommandStatus, Node, NodeLog

MAX_COMMANDS = 500  # per bulk cancel, as every bulk admin operation


@admin.register(NodeLog)
class NodeLogAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "event", "node_name", "host_name", "image_change", "allocation_change", "by"]
    list_select_related = ["old_image", "new_image", "actor"]
    list_filter = ["event", "source", "forced", "force_requested"]
    search_fields = ["node_name", "host_name"]
    id_search_field = "node_id"
    search_help_text = "Node or host name (or part of it), or a node id."
    sortable_by = ["created_at"]

    @admin.display(description="image")
    def image_change(self, entry):
        return log_change(entry)[0]

    @admin.display(description="allocation (CPU, memory, disk)")
    def allocation_change(self, entry):
        return log_change(entry)[1]

    @admin.display(description="by")
    def by(self, entry):
        return log_change(entry)[2]


@admin.register(Command)
class CommandAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "kind", "node_id", "host", "status_column", "attempts", "acked_at", "finished_at"]
    list_select_related = ["host"]
    list_filter = ["status", "kind", OverdueFilter]
    search_fields = ["host__name"]
    id_search_field = "node_id"
    search_help_text = "Host name (or part of it), or a node id."
    sortable_by = []  # newest first (by id); any other order would sort the whole table
    actions = ["cancel_selected"]

    @admin.display(description="status")
    def status_column(self, command):
        return state_badge(command.status, command.get_status_display(), command.message)

    def changelist_view(self, request, extra_context=None):
        # An open command on the page: it refreshes until the agents have answered.
        return refresh_while(super().changelist_view(request, extra_context), lambda command: command.is_open)

    def has_cancel_command_permission(self, request):
        return request.user.has_perm("nodes.cancel_command")

    @admin.action(permissions=["cancel_command"], description="Cancel selected commands…")
    def cancel_selected(self, request, queryset):
        """A confirmation page (what cancelling does to each node), then one command_cancel per
        command and one summary line."""
        command_ids = list(queryset.order_by("id").values_list("pk", flat=True)[: MAX_COMMANDS + 1])
        if len(command_ids) > MAX_COMMANDS:
            self.message_user(request, f"Select at most {MAX_COMMANDS} commands to cancel.", messages.ERROR)
            return None
        if request.POST.get("step") != "apply":
            commands = Command.objects.filter(pk__in=command_ids).select_related("host").order_by("id")
            nodes = Node.objects.in_bulk([command.node_id for command in commands])
            rows = [{"command": c, "node": nodes.get(c.node_id), "effect": _cancel_effect(c)} for c in commands]
            return TemplateResponse(
                request,
                "admin/nodes/command/cancel_confirm.html",
                {
                    **self.admin_site.each_context(request),
                    "opts": self.opts,
                    "title": f"Cancel {len(command_ids)} command{'s' if len(command_ids) != 1 else ''}",
                    "subtitle": None,
                    "command_ids": command_ids,
                    "rows": rows,
                    "open_rows": sum(1 for row in rows if row["command"].is_open),
                    "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                    "media": self.media,
                },
            )
        done, failed = 0, []
        for command_id in command_ids:
            try:
                command_cancel(command_id=command_id, actor=request.user, source=Source.ADMIN)
            except ApplicationError as error:
                failed.append(f"command {command_id}: {error.detail}")
            else:
                done += 1
        summary = f"{done} command{'s' if done != 1 else ''} cancelled"
        if failed:
            summary += f", {len(failed)} not: " + "; ".join(failed)
        self.message_user(request, summary + ".", messages.WARNING if failed else messages.SUCCESS)
        return None


def _cancel_effect(command: Command) -> str:
    """What cancelling `command` does to its node (SPEC §9), as the confirmation page says it."""
    if not command.is_open:
        return f"Nothing: the command is already {command.get_status_display().lower()}."
    if command.status == CommandStatus.ACKED:
        return "The host's agent is working on it: the node becomes failed (what the host runs is unknown)."
    if command.kind == "node_upgrade":
        return "The host never started it: the node returns to its previous image, config and allocation."
    if command.kind == "node_create":
        return "The host never started it: the node becomes failed (delete it afterwards)."
    return "The host never started it: the node stays deleted; the host may still hold it."
