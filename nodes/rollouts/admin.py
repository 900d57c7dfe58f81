"""The rollouts admin (§10): a list with a progress bar per rollout, a page per rollout (its
batches, a per-host table, the control buttons, why it stopped), and "Roll out this image…" on
images (selection → plan → confirm). Each page runs a constant number of queries; every change
goes through the rollout services."""

import uuid
from functools import partial

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_http_methods, require_POST

from config.errors import ApplicationError
from config.units import RESOURCES, human_amount
from hosts.admin.helpers import refresh_seconds, refresh_while
from hosts.audit import hosts_by_id_or_name
from nodes.models import Image
from nodes.rollouts.models import FAILURE_STATUSES, Rollout, RolloutNode, RolloutNodeStatus, RolloutState
from nodes.rollouts.plan import rollout_plan, selection_check
from nodes.rollouts.selectors import rollout_counts
from nodes.rollouts.services import ROLLOUT_CONTROLS, rollout_create

#: The bar's segments, in order: (status or statuses, CSS class, label).
SEGMENTS = [
    ((RolloutNodeStatus.SUCCEEDED,), "ok", "succeeded"),
    (FAILURE_STATUSES, "failed", "failed"),
    ((RolloutNodeStatus.REFUSED,), "refused", "refused"),
    ((RolloutNodeStatus.UPGRADING,), "upgrading", "upgrading"),
    ((RolloutNodeStatus.PENDING,), "pending", "pending"),
]
#: Which buttons each state shows (the services refuse the others anyway: invalid_state).
BUTTONS = {
    RolloutState.PLANNED: ["start", "abort"],
    RolloutState.RUNNING: ["pause", "abort"],
    RolloutState.PAUSED: ["resume", "abort"],
    RolloutState.HALTED: ["resume", "abort"],
}
PLAN_ROWS_SHOWN = 500
UPGRADING = RolloutNodeStatus.UPGRADING


def state_badge(value: str, label: str):
    """A rollout's state as the rollout page shows it: white on its state's colour (nf-state-<state>)."""
    return format_html('<span class="nf-badge nf-state nf-state-{}">{}</span>', value, label)


def progress_bar(counts: dict) -> str:
    """succeeded / failed / refused / upgrading / pending as one bar (skipped nodes left out)."""
    total = sum(counts.get(status, 0) for status in RolloutNodeStatus.values if status != RolloutNodeStatus.SKIPPED)
    segments, labels = [], []
    for statuses, css, label in SEGMENTS:
        n = sum(counts.get(status, 0) for status in statuses)
        if n:
            segments.append((css, f"{n * 100 / total:.2f}"))
            labels.append(f"{n} {label}")
    skipped = counts.get(RolloutNodeStatus.SKIPPED, 0)
    if skipped:
        labels.append(f"{skipped} skipped")
    return format_html(
        '<span class="nf-progress"><span class="nf-bar nf-progress-bar">{}</span>'
        '<span class="nf-usage-text">{}</span></span>',
        format_html_join("", '<span class="nf-seg nf-seg-{}" style="width:{}%"></span>', segments),
        ", ".join(labels) or "no node",
    )


@admin.register(Rollout)
class RolloutAdmin(admin.ModelAdmin):
    list_display = ["rollout", "image", "state_column", "progress", "batch", "created_at", "creator"]
    list_filter = ["state", "image__protocol"]
    list_select_related = ["image", "creator"]
    list_per_page = 50
    show_facets = admin.ShowFacets.NEVER

    class Media:
        css = {"all": ["hosts/admin.css", "nodes/rollouts.css"]}

    def get_queryset(self, request):
        counts = {f"n_{status}": Count("nodes", filter=Q(nodes__status=status)) for status in RolloutNodeStatus.values}
        return super().get_queryset(request).annotate(**counts)

    @admin.display(description="rollout", ordering="created_at")
    def rollout(self, rollout):
        return format_html("{} {}", str(rollout.pk)[:8], "(auto)" if rollout.auto else "")

    @admin.display(description="state", ordering="state")
    def state_column(self, rollout):
        return state_badge(rollout.state, rollout.get_state_display())

    def changelist_view(self, request, extra_context=None):
        # A running rollout on the page: the list refreshes while it moves.
        response = super().changelist_view(request, extra_context)
        return refresh_while(response, lambda rollout: rollout.state == RolloutState.RUNNING)

    @admin.display(description="progress")
    def progress(self, rollout):
        return progress_bar({status: getattr(rollout, f"n_{status}") for status in RolloutNodeStatus.values})

    @admin.display(description="batch")
    def batch(self, rollout):
        return f"{rollout.current_batch} of {rollout.batches}"

    def has_add_permission(self, request):
        return False  # made from an image: "Roll out this image…"

    def has_delete_permission(self, request, obj=None):
        return False  # the record of what was done stays

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "<str:rollout_id>/control/<str:action>/",
                view(partial(control_view, model_admin=self)),
                name="nodes_rollout_control",
            ),
            path(
                "image/<str:image_id>/",
                view(partial(image_rollout_view, model_admin=self)),
                name="nodes_rollout_image",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        rollout = _found(Rollout.objects.select_related("image", "creator"), object_id)
        if rollout is None:  # as the admin does for a missing object: back to the index, with a message
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        rows = RolloutNode.objects.filter(rollout=rollout).order_by()
        batches = list(rows.exclude(batch=0).values("batch").annotate(**_status_counts()).order_by("batch"))
        hosts = list(rows.values("host_name").annotate(**_status_counts()).order_by("host_name"))
        trouble = list(
            rows.filter(status__in=[*FAILURE_STATUSES, RolloutNodeStatus.REFUSED])
            .order_by("position")
            .values("node_id", "node_name", "host_name", "batch", "status", "reason")[:100]
        )
        counts = rollout_counts([rollout.pk])[rollout.pk]
        may_change = request.user.has_perm("nodes.change_rollout")
        context = {
            **self.admin_site.each_context(request),
            "title": f"Rollout to {rollout.image}",
            "subtitle": None,
            "opts": self.opts,
            "rollout": rollout,
            "counts": counts,
            "progress": progress_bar(counts),
            "batches": [{**b, "bar": progress_bar(b)} for b in batches],
            "hosts": [{**h, "bar": progress_bar(h)} for h in hosts],
            "trouble": trouble,
            "buttons": BUTTONS.get(rollout.state, []) if may_change else [],
            "failures": sum(counts[status] for status in FAILURE_STATUSES),
            # Halted is what went wrong; a pause (after the canary, or by someone) is news, not an error.
            "reason_level": "error" if rollout.state == RolloutState.HALTED else "notice",
            "nodes_url": reverse("admin:nodes_node_changelist") + f"?rollout={rollout.pk}",
            # Running, or nodes whose agents have yet to report: the page refreshes while it moves.
            "nf_refresh": refresh_seconds() if rollout.state == RolloutState.RUNNING or counts[UPGRADING] else None,
        }
        return TemplateResponse(request, "admin/nodes/rollout/detail.html", context)


def _found(queryset, pk):
    """The row with this pk, or None (also for a malformed pk)."""
    try:
        return queryset.filter(pk=uuid.UUID(str(pk))).first()
    except ValueError:
        return None


def _status_counts() -> dict:
    return {status: Count("id", filter=Q(status=status)) for status in RolloutNodeStatus.values}


@require_POST
def control_view(request, rollout_id, action, *, model_admin):
    if action not in ROLLOUT_CONTROLS:
        raise PermissionDenied
    if not request.user.has_perm("nodes.change_rollout"):
        raise PermissionDenied
    extra = {}
    if action == "resume" and request.POST.get("max_failures"):
        try:
            extra["max_failures"] = int(request.POST["max_failures"])
        except ValueError:
            model_admin.message_user(request, "max_failures must be a whole number.", messages.ERROR)
            return HttpResponseRedirect(reverse("admin:nodes_rollout_change", args=[rollout_id]))
    try:
        rollout = ROLLOUT_CONTROLS[action](rollout_id=rollout_id, actor=request.user, **extra)
    except ApplicationError as error:
        model_admin.message_user(request, error.detail, messages.ERROR)
    else:
        model_admin.message_user(request, f"Rollout {str(rollout.pk)[:8]} is {rollout.state}.", messages.SUCCESS)
    return HttpResponseRedirect(reverse("admin:nodes_rollout_change", args=[rollout_id]))


class RolloutForm(forms.Form):
    """The selection and pacing of a rollout (the plan and the services check them again)."""

    from_versions = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, help_text="None checked: every other version."
    )
    hosts = forms.CharField(
        required=False, help_text="Only these hosts: names or ids, separated by commas or spaces (empty: all)."
    )
    batch_size = forms.IntegerField(min_value=1, max_value=2**31 - 1, initial=25)
    canary = forms.IntegerField(min_value=0, max_value=2**31 - 1, initial=1, help_text="Size of batch 1; 0: none.")
    pause_after_canary = forms.BooleanField(required=False, initial=True)
    max_failures = forms.IntegerField(
        min_value=1, max_value=2**31 - 1, initial=1, help_text="Failed plus rolled-back nodes that halt the rollout."
    )
    result_timeout_seconds = forms.IntegerField(min_value=1, max_value=2**31 - 1, initial=3600)
    start = forms.BooleanField(required=False, initial=True, help_text="Start as soon as it is created.")

    def __init__(self, *args, image: Image, may_start: bool, **kwargs):
        super().__init__(*args, **kwargs)
        versions = Image.objects.filter(protocol=image.protocol).exclude(pk=image.pk).values_list("version", flat=True)
        self.fields["from_versions"].choices = [(v, v) for v in versions]
        if not may_start:
            del self.fields["start"]


@require_http_methods(["GET", "POST"])
def image_rollout_view(request, image_id, *, model_admin):
    """Roll out this image: the selection (GET), its plan (POST step=plan), then confirm
    (step=create) makes the rollout and opens its page. Nothing is written before confirm."""
    user = request.user
    if not (user.has_perm("nodes.add_rollout") and user.has_perm("nodes.upgrade_node")):
        raise PermissionDenied
    image = _found(Image.objects.all(), image_id)
    if image is None:
        model_admin.message_user(request, f"No image with id {image_id}.", messages.WARNING)
        return HttpResponseRedirect(reverse("admin:nodes_image_changelist"))
    may_start = user.has_perm("nodes.change_rollout")
    form = RolloutForm(request.POST or None, image=image, may_start=may_start)
    plan = None
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        start = data.pop("start", False)
        try:
            hosts = hosts_by_id_or_name(data.pop("hosts").replace(",", " ").split())
            selection = selection_check(image_id=image.pk, host_ids=[h.pk for h in hosts], **data)
            if request.POST.get("step") == "create":
                rollout = rollout_create(selection=selection, start=start, actor=user)
                model_admin.message_user(
                    request,
                    f"Rollout to {image} created ({rollout.state}, {rollout.batches} batch(es)).",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:nodes_rollout_change", args=[rollout.pk]))
            plan = rollout_plan(selection)
        except ApplicationError as error:
            form.add_error(None, error.detail)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"Roll out {image}",
        "subtitle": None,
        "opts": model_admin.opts,
        "image": image,
        "form": form,
        "plan": plan,
        "plan_rows": _plan_rows(plan) if plan else [],
        "plan_cut": plan is not None and len(plan.nodes) > PLAN_ROWS_SHOWN,
        "host_rows": [_host_row(host) for host in plan.hosts] if plan else [],
    }
    return TemplateResponse(request, "admin/nodes/rollout/plan.html", context)


def _amounts(resources) -> str:
    return ", ".join(human_amount(name, getattr(resources, name)) for name in RESOURCES)


def _plan_rows(plan):
    return [
        {
            "node": node,
            "old": _amounts(node.old),
            "new": _amounts(node.new),
        }
        for node in plan.nodes[:PLAN_ROWS_SHOWN]
    ]


def _host_row(host):
    return {"host": host, "delta": _amounts(host.delta), "free_after": _amounts(host.free_after)}
