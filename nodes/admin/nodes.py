"""The nodes admin for support staff: images (properties inline, frozen once a node runs them),
nodes (added, deleted and upgraded only through the services, so counters stay right); the
history (NodeLog, Command) is in nodes/admin/history.py. Thin: every change is a service call."""

from collections import Counter
from functools import partial

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.actions import delete_selected as confirm_delete_selected
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, Exists, OuterRef
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from config.errors import ApplicationError, InsufficientCapacity, InvalidInput
from config.units import RESOURCE_LABELS, RESOURCES, human_amount, human_bytes, human_cores
from hosts.admin.helpers import (
    ErrorsAsMessages,
    LargeTableAdmin,
    PrintableFieldsForm,
    TextInputFilter,
    as_uuid,
)
from hosts.models import Source
from nodes.admin.bulk import MAX_NODES, nodes_delete, nodes_upgrade, nodes_upgrade_plan
from nodes.admin.forms import NodeCreateForm, UpgradeImageForm, requirements
from nodes.admin.views import fleet_audit_view
from nodes.agent.overdue import overdue_condition
from nodes.changes.upgrade import node_create, node_delete
from nodes.models import IMAGE_IN_USE, Command, CommandStatus, Image, ImageProperty, Node, NodeLog, NodeState
from nodes.resources import Resources
from nodes.rollouts.auto import nodes_auto_upgrade_set, rollout_auto_create
from nodes.selectors import node_commands, revert_image

#: Log entries a node's page shows (the node log lists them all).
HISTORY_ROWS = 20
#: Agent commands a node's page shows in its timeline (the commands list has them all).
TIMELINE_ROWS = 20
#: The most commands one cancel from the list takes.

# ---------------------------------------------------------------------------------------------
# Images


def _nodes_running(image: Image | None) -> int:
    """How many nodes run the image (0 for an image being added); counted once per request."""
    if image is None or image.pk is None:
        return 0
    if not hasattr(image, "_nodes_running"):
        image._nodes_running = image.node_total()
    return image._nodes_running


class ImagePropertyForm(PrintableFieldsForm):
    printable_fields = ("key", "default_value")


class ImageForm(PrintableFieldsForm):
    printable_fields = ("protocol", "version")


class ImagePropertyInline(admin.TabularInline):
    model = ImageProperty
    form = ImagePropertyForm
    extra = 0
    fields = ["key", "default_value", "add_cpu_cores", "add_memory_bytes", "add_disk_bytes"]
    frozen_fields = ["key", "default_value", "adds"]

    def get_fields(self, request, obj=None):
        return self.frozen_fields if _nodes_running(obj) else self.fields

    def get_readonly_fields(self, request, obj=None):
        return self.frozen_fields if _nodes_running(obj) else []

    @admin.display(description="a node whose value differs from the default adds")
    def adds(self, prop):
        adds = Resources.from_mapping(vars(prop), prefix="add_")
        return ", ".join(human_amount(name, amount) for name, amount in adds.items())

    def has_add_permission(self, request, obj=None):
        return not _nodes_running(obj) and super().has_add_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return not _nodes_running(obj) and super().has_delete_permission(request, obj)


@admin.register(Image)
class ImageAdmin(ErrorsAsMessages):
    form = ImageForm
    list_display = ["__str__", "protocol", "version", "minimum", "in_use"]
    list_filter = ["protocol"]
    search_fields = ["protocol", "version"]
    inlines = [ImagePropertyInline]
    actions = ["roll_out"]
    requirement_fields = ["protocol", "version", "min_cpu_cores", "min_memory_bytes", "min_disk_bytes"]

    class Media:
        css = {"all": ["hosts/admin.css"]}

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(in_use=Exists(Node.objects.filter(image=OuterRef("pk"))))

    def get_fields(self, request, obj=None):
        return [*self.requirement_fields, "minimum", "usage"] if obj else self.requirement_fields

    def get_readonly_fields(self, request, obj=None):
        return [*self.requirement_fields, "minimum", "usage"] if _nodes_running(obj) else ["minimum", "usage"]

    def has_delete_permission(self, request, obj=None):
        return not _nodes_running(obj) and super().has_delete_permission(request, obj)

    def delete_queryset(self, request, queryset):
        """One Image.delete() each (it locks the image and counts its nodes first), in pk order."""
        with transaction.atomic():
            for image in queryset.order_by("pk"):
                image.delete()

    def get_deleted_objects(self, objs, request):
        """Refuses images in use up front, rather than listing every node that protects them."""
        in_use = Image.objects.filter(pk__in=[image.pk for image in objs]).annotate(count=Count("nodes"))
        protected = [f"{image}: run by {image.count} node(s)" for image in in_use if image.count]
        if protected:
            return [], {}, set(), protected
        return super().get_deleted_objects(objs, request)

    @admin.action(description="Roll out this image…")
    def roll_out(self, request, queryset):
        """To the rollout page of the one selected image: selection, plan, confirm (§10)."""
        images = list(queryset[:2])
        if len(images) != 1:
            self.message_user(request, "Select exactly one image to roll out.", messages.WARNING)
            return None
        return HttpResponseRedirect(reverse("admin:nodes_rollout_image", args=[images[0].pk]))

    def save_related(self, request, form, formsets, change):
        """A new image (properties saved too) rolls out to the auto_upgrade nodes it is newer for."""
        super().save_related(request, form, formsets, change)
        if not change and (rollout := rollout_auto_create(image=form.instance, actor=request.user)):
            self.message_user(
                request,
                f"Auto-upgrade: rollout {str(rollout.pk)[:8]} to {form.instance}, {rollout.state}.",
                messages.INFO,
            )

    @admin.display(description="minimum (CPU, memory, disk)")
    def minimum(self, image):
        return requirements(image)

    @admin.display(description="in use", boolean=True, ordering="in_use")
    def in_use(self, image):
        return image.in_use

    @admin.display(description="nodes running it")
    def usage(self, image):
        count = _nodes_running(image)
        if not count:
            return "None: requirements and properties can still change."
        url = reverse("admin:nodes_node_changelist") + f"?image__id__exact={image.pk}"
        return format_html('<a href="{}">{} node(s)</a>. {}', url, count, IMAGE_IN_USE.format(image=image, count=count))


# ---------------------------------------------------------------------------------------------
# Nodes


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


def _allocation(obj, prefix: str = "") -> str:
    return ", ".join(human_amount(name, getattr(obj, prefix + name)) for name in RESOURCES)


@admin.register(Node)
class NodeAdmin(LargeTableAdmin):
    list_display = ["name", "host_link", "image", "protocol", "allocation", "state_column"]
    list_select_related = ["host", "image"]
    list_filter = [HostFilter, ProtocolFilter, "image", "state", OverdueFilter]
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
            (
                (entry.created_at.strftime("%Y-%m-%d %H:%M:%S"), entry.get_event_display(), *log_change(entry))
                for entry in entries
            ),
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
        image_ids = {side_image for command in commands for side_image in _payload_images(command.payload)}
        images = Image.objects.in_bulk([image_id for image_id in image_ids if image_id is not None])
        rows = format_html_join(
            "",
            '<tr id="command-{}"><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>',
            (
                (
                    command.pk,
                    reverse("admin:nodes_command_change", args=[command.pk]),
                    command.pk,
                    _command_subject(command, images),
                    _command_steps(command),
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
        return [path("audit/", audit, name="fleet_audit"), *super().get_urls()]

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
            "node_failed": node is not None and node.state == NodeState.FAILED,
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
            data = form.cleaned_data
            try:
                change = node_create(
                    name=data["name"],
                    host_id=data["host"].pk,
                    image_id=data["image"].pk,
                    properties=data["properties"],
                    force=data.get("force", False),
                    auto_upgrade=data.get("auto_upgrade", False),
                    actor=request.user,
                    source=Source.ADMIN,
                )
            except InvalidInput as error:
                for field, field_errors in error.extra["errors"].items():
                    form.add_error(field if field in form.fields else None, field_errors)
            except ApplicationError as error:
                form.add_error(None, error.detail)
            else:
                self.log_addition(request, change.node, [{"added": {}}])
                self.message_user(
                    request, f"Node {change.node} placed on {change.host}: {_allocation(change.node)}.", messages.INFO
                )
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


def _payload_images(payload) -> list:
    """The image ids (UUIDs or None) an upgrade command's payload names: from, to."""
    if not isinstance(payload, dict):
        return []
    sides = [payload.get("from"), payload.get("to")] if "to" in payload else [payload]
    return [as_uuid(str(side.get("image_id", ""))) if isinstance(side, dict) else None for side in sides]


def _command_subject(command: Command, images: dict) -> str:
    """`Upgrade node ethereum@1.0 → ethereum@1.1` from the payload's image ids."""
    labels = [str(images.get(image_id, "?")) for image_id in _payload_images(command.payload) if image_id]
    return f"{command.get_kind_display()} {' → '.join(labels)}".strip()


def _command_steps(command: Command):
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
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def log_change(entry: NodeLog) -> tuple[str, str, str]:
    """(image, allocation, actor) of a log entry as a person reads them: old → new."""
    images = [str(image) for image in (entry.old_image, entry.new_image) if image is not None]
    image = " → ".join(dict.fromkeys(images))
    sides = [
        _allocation(entry, prefix) for prefix in ("old_", "new_") if getattr(entry, prefix + "cpu_cores") is not None
    ]
    allocation = " → ".join(sides)
    if entry.forced:
        allocation += " (forced)"
    return image, allocation, f"{entry.actor or '—'} ({entry.get_source_display()})"


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


from nodes.admin import history  # noqa: E402,F401 -- registers the node log and commands admin
from nodes.rollouts import admin as rollouts_admin  # noqa: E402,F401 -- registers the rollouts' admin
