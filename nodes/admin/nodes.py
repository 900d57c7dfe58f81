"""The nodes admin for support staff: nodes (added, deleted and upgraded only through the services,
so counters stay right). Images are in nodes/admin/images.py, the history (NodeLog, Command) in
nodes/admin/history.py, the filters and badges both use in nodes/admin/display.py. Thin: every
change is a service call."""

from collections import Counter
from functools import partial

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.actions import delete_selected as confirm_delete_selected
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from config.errors import ApplicationError, InsufficientCapacity
from config.formats import human_datetime
from config.units import RESOURCE_LABELS, RESOURCES, human_amount, human_bytes, human_cores
from hosts.admin.helpers import LargeTableAdmin, as_uuid, refresh_seconds
from hosts.models import Source
from nodes.admin.bulk import MAX_NODES, nodes_delete, nodes_upgrade, nodes_upgrade_plan
from nodes.admin.display import (
    IN_FLIGHT_STATES,
    HostFilter,
    OverdueFilter,
    ProtocolFilter,
    cancel_label,
    command_steps,
    command_subject,
    log_change,
    payload_images,
    state_badge,
)
from nodes.admin.forms import NodeCreateForm, UpgradeImageForm
from nodes.admin.placement import added_message, node_add, place_nodes_view
from nodes.admin.search import CountFromFirstPage
from nodes.admin.views import fleet_audit_view
from nodes.changes import node_delete
from nodes.models import Command, CommandStatus, Image, Node, NodeLog, NodeState
from nodes.rollouts.auto import nodes_auto_upgrade_set
from nodes.rollouts.models import RolloutNode
from nodes.selectors import node_commands, revert_image

#: Log entries a node's page shows (the node log lists them all).
HISTORY_ROWS = 20
#: Agent commands a node's page shows in its timeline (the commands list has them all).
TIMELINE_ROWS = 20
#: The most commands one cancel from the list takes.

# ---------------------------------------------------------------------------------------------
# Nodes


class RolloutFilter(admin.SimpleListFilter):
    """The nodes of one rollout (`?rollout=<id>`: the rollout page links here); shown only when set."""

    title = "rollout"
    parameter_name = "rollout"

    def lookups(self, request, model_admin):
        value = self.value()
        return [(value, f"rollout {value[:8]}")] if value else []

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        rollout_id = as_uuid(self.value())
        if rollout_id is None:
            return queryset.none()
        return queryset.filter(pk__in=RolloutNode.objects.filter(rollout_id=rollout_id).values("node_id"))


@admin.register(Node)
class NodeAdmin(CountFromFirstPage, LargeTableAdmin):
    list_display = ["name", "host_link", "image", "protocol", "allocation", "state_column"]
    list_select_related = ["host", "image"]
    list_filter = [HostFilter, ProtocolFilter, "image", "state", OverdueFilter, RolloutFilter]
    search_fields = ["name"]
    id_search_field = "pk"
    search_help_text = "Node name (or part of it), or a node id."
    # Only the name has an index fit for sorting a million rows page by page.
    sortable_by = ["name"]
    actions = ["upgrade_selected", "auto_upgrade_on", "auto_upgrade_off", "delete_selected"]

    fieldsets = [
        (None, {"fields": ["name", "host_link", "image", "state_column", "auto_upgrade", "config"]}),
        ("Allocation", {"fields": ["cpu", "memory", "disk"]}),
        ("Agent commands", {"fields": ["timeline"]}),
        ("History", {"fields": ["history"]}),
        ("Record", {"fields": ["id", "created_at", "updated_at"], "classes": ["collapse"]}),
    ]
    readonly_fields = [field for _name, options in fieldsets for field in options["fields"]]

    # Columns and fields -----------------------------------------------------------------------

    @admin.display(description="host", ordering="host__name")
    def host_link(self, node):
        return format_html('<a href="{}">{}</a>', reverse("admin:hosts_host_change", args=[node.host_id]), node.host)

    @admin.display(description="state", ordering="state")
    def state_column(self, node):
        return state_badge(node.state, node.get_state_display())

    @admin.display(description="protocol")
    def protocol(self, node):
        return node.image.protocol

    @admin.display(description="allocation")
    def allocation(self, node):
        # No break inside an amount ("700.0 GiB"): a narrow column wraps after the commas only.
        amounts = ((human_amount(name, getattr(node, name)),) for name in RESOURCES)
        return format_html_join(", ", '<span class="nf-nowrap">{}</span>', amounts)

    @admin.display(description="CPU")
    def cpu(self, node):
        return human_cores(node.cpu_cores)

    @admin.display(description="memory")
    def memory(self, node):
        return human_bytes(node.memory_bytes)

    @admin.display(description="disk")
    def disk(self, node):
        return human_bytes(node.disk_bytes)

    @admin.display(description="config")
    def config(self, node):
        if not isinstance(node.properties, dict):
            return format_html("<code>{}</code> (not a key → value object)", repr(node.properties))
        return format_html_join(", ", "<code>{}={}</code>", sorted(node.properties.items())) or "(empty)"

    @admin.display(description="latest changes")
    def history(self, node):
        entries = (
            NodeLog.objects.filter(node_id=node.pk)
            .select_related("old_image", "new_image", "actor")
            .order_by("-created_at", "-id")[:HISTORY_ROWS]
        )
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((human_datetime(entry.created_at), entry.get_event_display(), *log_change(entry)) for entry in entries),
        )
        rows = rows or format_html('<tr><td colspan="5">{}</td></tr>', "No change recorded yet.")
        all_url = reverse("admin:nodes_nodelog_changelist") + f"?q={node.pk}"
        return format_html(
            '<table class="nf-history"><thead><tr><th>when</th><th>event</th><th>image</th><th>allocation</th>'
            "<th>by</th></tr></thead><tbody>{}</tbody></table>"
            '<p><a href="{}">All entries of this node in the node log</a></p>',
            rows,
            all_url,
        )

    @admin.display(description="timeline (newest first)")
    def timeline(self, node):
        """Each command of the node: created → acked → its outcome, with the agent's message."""
        commands = node_commands(node.pk, limit=TIMELINE_ROWS)
        image_ids = {side_image for command in commands for side_image in payload_images(command.payload)}
        images = Image.objects.in_bulk([image_id for image_id in image_ids if image_id is not None])
        rows = format_html_join(
            "",
            '<tr id="command-{}"><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>',
            (
                (
                    command.pk,
                    reverse("admin:nodes_command_change", args=[command.pk]),
                    command.pk,
                    command_subject(command, images),
                    command_steps(command),
                    command.attempts,
                    command.message or "—",
                )
                for command in commands
            ),
        )
        rows = rows or format_html('<tr><td colspan="5">{}</td></tr>', "No command for the host's agent yet.")
        all_url = reverse("admin:nodes_command_changelist") + f"?q={node.pk}"
        return format_html(
            '<table class="nf-history nf-timeline"><thead><tr><th>command</th><th>what</th>'
            "<th>created → acked → outcome</th><th>retries</th><th>agent's message</th></tr></thead>"
            '<tbody>{}</tbody></table><p><a href="{}">All commands of this node</a></p>',
            rows,
            all_url,
        )

    # Pages ------------------------------------------------------------------------------------

    def get_urls(self):
        audit = self.admin_site.admin_view(partial(fleet_audit_view, model_admin=self))
        place = self.admin_site.admin_view(partial(place_nodes_view, model_admin=self))
        return [
            path("audit/", audit, name="fleet_audit"),
            path("place/", place, name="nodes_node_place"),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        may_upgrade = self.has_upgrade_permission(request)
        node = Node.objects.filter(pk=as_uuid(object_id or "")).only("pk", "state", "image_id").first()
        open_command = None
        if node is not None and request.user.has_perm("nodes.cancel_command"):
            open_command = (
                Command.objects.filter(node_id=node.pk, status__in=[CommandStatus.PENDING, CommandStatus.ACKED])
                .only("pk", "kind", "status")
                .first()
            )
        extra_context = {
            **(extra_context or {}),
            "may_upgrade": may_upgrade,
            "revert_image": revert_image(node) if may_upgrade and node is not None else None,
            "open_command": open_command,
            "cancel_label": cancel_label(open_command) if open_command is not None else "",
            "node_failed": node is not None and node.state == NodeState.FAILED,
            # A node whose agent has yet to report: the page refreshes until it has (nodefleet/refresh.js).
            "nf_refresh": refresh_seconds() if node is not None and node.state in IN_FLIGHT_STATES else None,
        }
        return super().change_view(request, object_id, form_url, extra_context)

    # Permissions ------------------------------------------------------------------------------

    def has_change_permission(self, request, obj=None):
        return False  # a node changes only through its operations: upgrade, delete

    def has_upgrade_permission(self, request):
        return request.user.has_perm("nodes.upgrade_node")

    def may_force(self, request) -> bool:
        return request.user.has_perm("hosts.overcommit_host")

    # Add: through node_create -----------------------------------------------------------------

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = NodeCreateForm(request.POST or None, allow_force=self.may_force(request))
        if request.method == "POST" and form.is_valid():
            change = node_add(request, form)
            if change is not None:
                self.log_addition(request, change.node, [{"added": {}}])
                self.message_user(request, added_message(change, placed=not form.cleaned_data.get("host")))
                return self.response_add(request, change.node)
        admin_form = helpers.AdminForm(form, [(None, {"fields": list(form.fields)})], {}, model_admin=self)
        context = {
            **self.admin_site.each_context(request),
            "title": "Add node",
            "subtitle": None,
            "adminform": admin_form,
            "object_id": None,
            "original": None,
            "is_popup": False,
            "to_field": None,
            "media": self.media + admin_form.media,
            "inline_admin_formsets": [],
            "errors": helpers.AdminErrorList(form, []),
            "preserved_filters": self.get_preserved_filters(request),
            **(extra_context or {}),
        }
        return self.render_change_form(request, context, add=True, form_url=form_url)

    # Delete: through node_delete --------------------------------------------------------------

    def delete_model(self, request, obj):
        node_delete(node_id=obj.pk, actor=request.user, source=Source.ADMIN)

    @admin.action(permissions=["upgrade"], description="Turn auto-upgrade on")
    def auto_upgrade_on(self, request, queryset):
        self._auto_upgrade(request, queryset, True)

    @admin.action(permissions=["upgrade"], description="Turn auto-upgrade off")
    def auto_upgrade_off(self, request, queryset):
        self._auto_upgrade(request, queryset, False)

    def _auto_upgrade(self, request, queryset, value: bool):
        """Sets the one field of a node changed in place (§10) on the selected nodes."""
        node_ids = self._selection(request, queryset)
        if node_ids is None:
            return
        changed = nodes_auto_upgrade_set(node_ids=node_ids, auto_upgrade=value)
        self.message_user(request, f"Auto-upgrade {'on' if value else 'off'}: {changed} node(s) changed.")

    @admin.action(permissions=["delete"], description="Delete selected nodes")
    def delete_selected(self, request, queryset):
        """Django's confirmation page, then one node_delete per node and one summary line."""
        node_ids = self._selection(request, queryset)
        if node_ids is None:
            return None
        if not request.POST.get("post"):
            return confirm_delete_selected(self, request, queryset.filter(pk__in=node_ids))
        report = nodes_delete(node_ids=node_ids, actor=request.user, source=Source.ADMIN)
        if report.done:
            self.log_deletions(request, report.done)
        self.message_user(request, report.summary(), messages.ERROR if report.failed else messages.SUCCESS)
        return None

    # Upgrade: choose an image, read the plan, confirm -----------------------------------------

    @admin.action(permissions=["upgrade"], description="Upgrade selected nodes…")
    def upgrade_selected(self, request, queryset):
        node_ids = self._selection(request, queryset)
        if node_ids is None:
            return None
        selection = Node.objects.filter(pk__in=node_ids)
        protocols = sorted(set(selection.values_list("image__protocol", flat=True)))
        if not protocols:
            self.message_user(request, "The selected nodes no longer exist.", messages.ERROR)
            return None
        if len(protocols) > 1:
            self.message_user(
                request,
                f"The selected nodes run {len(protocols)} protocols ({', '.join(protocols)}): an upgrade moves "
                "nodes to another image of their own protocol. Select nodes of one protocol (filter by "
                "protocol) and try again.",
                messages.ERROR,
            )
            return None
        running = dict(selection.order_by().values_list("image").annotate(count=Count("pk")))
        step = request.POST.get("step")
        form = UpgradeImageForm(
            request.POST if step else None,
            initial={"image": request.POST.get("image")},
            protocol=protocols[0],
            running=running,
            allow_force=self.may_force(request),
        )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Upgrade {len(node_ids)} {protocols[0]} node{'s' if len(node_ids) != 1 else ''}",
            "subtitle": None,
            "form": form,
            "node_ids": node_ids,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        if not step or not form.is_valid():
            context["nodes"] = selection.select_related("host", "image").order_by("host__name", "name")
            return TemplateResponse(request, "admin/nodes/node/upgrade_choose.html", context)
        image, force = form.cleaned_data["image"], form.cleaned_data.get("force", False)
        try:
            if step == "apply":
                report = nodes_upgrade(
                    node_ids=node_ids, image_id=image.pk, force=force, actor=request.user, source=Source.ADMIN
                )
                level = messages.SUCCESS if not report.failed else messages.WARNING if report.done else messages.ERROR
                self.message_user(request, report.summary(), level)
                return None
            plan = nodes_upgrade_plan(node_ids=node_ids, image_id=image.pk, force=force)
        except ApplicationError as error:
            self.message_user(request, error.detail, messages.ERROR)
            return None
        rows = [_plan_row(row) for row in plan]
        counts = Counter(row["status"] for row in rows)
        counts["applying"] = counts["fits"] + counts["forced"]
        context.update(image=image, force=force, rows=rows, counts=counts)
        return TemplateResponse(request, "admin/nodes/node/upgrade_plan.html", context)

    def _selection(self, request, queryset) -> list | None:
        """The selected ids, or None (and a message) past the most one bulk operation takes.
        Never counts the table: selecting "all" of a million nodes reads MAX_NODES + 1 ids."""
        node_ids = list(queryset.order_by().values_list("pk", flat=True)[: MAX_NODES + 1])
        if len(node_ids) > MAX_NODES:
            self.message_user(
                request,
                f"Select at most {MAX_NODES} nodes for one operation (filter the list to narrow it down).",
                messages.ERROR,
            )
            return None
        return node_ids


def _plan_row(row) -> dict:
    """A bulk plan's row as the plan page shows it: whether it would apply, and — only where
    the question arises — whether each resource fits (not past an earlier error) and the new
    allocation (not where none can be computed)."""
    outcome = row.outcome
    if row.skipped:
        status = "skipped"
    elif row.error is not None:
        status = "fails"
    elif not all(row.fits.values()):
        status = "forced"
    else:
        status = "fits"
    capacity_checked = row.error is None or isinstance(row.error, InsufficientCapacity)
    return {
        "node": outcome.node,
        "host": outcome.node.host,
        "from_version": outcome.from_image.version,
        "to_version": outcome.to_image.version,
        "changes": [
            {
                "label": RESOURCE_LABELS[name],
                "old": human_amount(name, getattr(outcome.old, name)),
                "new": human_amount(name, getattr(outcome.new, name)) if outcome.new_known else "—",
                "grows": outcome.new_known and getattr(outcome.delta, name) > 0,
                "fits": row.fits[name] if capacity_checked else None,
            }
            for name in RESOURCES
        ],
        "free_after": [
            {
                "label": RESOURCE_LABELS[name],
                "amount": human_amount(name, abs(free)),
                "over": free < 0,
            }
            for name, free in row.free_after.items()
        ],
        "status": status,
        "would_apply": row.error is None,
        "reason": row.error.detail if row.error is not None else "",
    }
