"""Placement (§11) in the nodes admin: a node added without a host, and "Place nodes…" — a form
(image, config, count, name prefix, strategy, region, spread_protocol) → the plan
(nodes.changes.node_placement_plan: per node the host, its score and its free capacity after
the rows before it) → confirm → one node_create per node → one summary message. Nothing is
written before confirm; refusals show the services' own sentences (the API's and the CLI's)."""

from dataclasses import dataclass, field
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from config.errors import ApplicationError, InvalidInput, NoHostAvailable
from config.text import printable_error
from config.units import RESOURCE_LABELS, RESOURCES, human_amount
from hosts.capacity import NODE_COUNT, shortfall_text
from hosts.models import Source
from nodes.admin.display import allocation_text
from nodes.admin.forms import ImageChoiceField, PlacementFields
from nodes.changes import NodeChange, node_create, node_placement_plan
from nodes.models import Image, Node

#: The most nodes one "Place nodes…" creates (the plan's limit, §11).
MAX_COUNT = 1000
NAME_MAX_LENGTH = Node._meta.get_field("name").max_length
#: A placement option's error key (the services') -> the form field it belongs to.
FIELD_OF = {
    "placement.strategy": "strategy",
    "placement.region": "region",
    "placement.spread_protocol": "spread_protocol",
    "host_id": "host",
    "image_id": "image",
}


def add_errors(form: forms.Form, error: ApplicationError) -> None:
    """A service's refusal on the form: each field's messages under its field, and the
    service's own sentence on top when the refusal is not about one field of the form (a host
    together with placement options, force without a host, no host available…)."""
    errors = error.extra.get("errors", {}) if isinstance(error, InvalidInput) else {}
    about_the_form = False
    for key, field_errors in errors.items():
        name = FIELD_OF.get(key, key)
        if name in form.fields and name != "force":
            form.add_error(name, field_errors)
        else:
            about_the_form = True
    if about_the_form or not errors:
        form.add_error(None, error.detail)


def node_add(request, form) -> NodeChange | None:
    """The add-node form's one node_create: on the host named, or placed when none is (§11)."""
    data = form.cleaned_data
    placement = form.placement()
    try:
        return node_create(
            name=data["name"],
            host_id=data["host"].pk if data.get("host") else None,
            image_id=data["image"].pk,
            properties=data["properties"],
            force=data.get("force", False),
            auto_upgrade=data.get("auto_upgrade", False),
            # With a host, options given are passed on, so node_create refuses them as the API does.
            placement=placement if placement or not data.get("host") else None,
            actor=request.user,
            source=Source.ADMIN,
        )
    except ApplicationError as error:
        add_errors(form, error)
        return None


def added_message(change: NodeChange, *, placed: bool) -> str:
    how = " (chosen by placement)" if placed else ""
    return f"Node {change.node} placed on {change.host}{how}: {allocation_text(change.node)}."


# ---------------------------------------------------------------------------------------------
# "Place nodes…"


class PlaceNodesForm(PlacementFields):
    image = ImageChoiceField(queryset=Image.objects.prefetch_related("properties").order_by("protocol", "version"))
    properties = forms.JSONField(
        required=False,
        initial=dict,
        label="Config",
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text='Every node\'s config, e.g. {"sync_mode": "archive"}: keys of the image\'s properties, string '
        "values. Keys left out take the image's defaults.",
    )
    count = forms.IntegerField(min_value=1, max_value=MAX_COUNT, initial=1, help_text=f"From 1 to {MAX_COUNT}.")
    name_prefix = forms.CharField(
        max_length=NAME_MAX_LENGTH - len(f"-{MAX_COUNT}"),
        help_text="The nodes are named <prefix>-1, <prefix>-2, …",
    )
    field_order = ["image", "properties", "count", "name_prefix", "strategy", "region", "spread_protocol"]

    def clean_properties(self):
        return self.cleaned_data["properties"] or {}

    def clean_name_prefix(self):
        prefix = self.cleaned_data["name_prefix"].strip()
        if not prefix:
            raise forms.ValidationError("A prefix for the nodes' names.")
        if unprintable := printable_error(prefix):
            raise forms.ValidationError(unprintable)
        return prefix

    def clean(self):
        cleaned = super().clean()
        if "name_prefix" in cleaned and "count" in cleaned:
            taken = list(
                Node.objects.filter(name__in=names(cleaned["name_prefix"], cleaned["count"]))
                .order_by("name")
                .values_list("name", flat=True)[:5]
            )
            if taken:
                self.add_error(
                    "name_prefix",
                    f"Nodes named {', '.join(taken)}{' …' if len(taken) == 5 else ''} already exist: choose "
                    "another prefix.",
                )
        return cleaned


def names(prefix: str, count: int) -> list[str]:
    return [f"{prefix}-{number}" for number in range(1, count + 1)]


@dataclass
class PlacementReport:
    """What "Place nodes…" did: the nodes placed, the refusal that stopped it (no host
    available: the nodes after it are not tried) and any other refusal, node by node."""

    count: int
    placed: list[NodeChange] = field(default_factory=list)
    stopped_by: str = ""  # the no_host_available sentence
    not_placed: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        """`10 nodes placed on 4 hosts.` / `7 nodes placed on 3 hosts; 3 not placed: No host …`"""
        hosts = len({change.host.pk for change in self.placed})
        placed = len(self.placed)
        parts = [
            f"{placed} node{'s' if placed != 1 else ''} placed on {hosts} host{'s' if hosts != 1 else ''}"
            if placed
            else "No node placed"
        ]
        if self.failed:
            parts.append(
                f"{len(self.failed)} failed: " + "; ".join(f"{name}: {detail}" for name, detail in self.failed)
            )
        if self.stopped_by:
            parts.append(f"{self.not_placed} not placed: {self.stopped_by}")
        text = "; ".join(parts)
        return text if text.endswith(".") else text + "."

    @property
    def level(self) -> int:
        if not (self.failed or self.stopped_by):
            return messages.SUCCESS
        return messages.WARNING if self.placed else messages.ERROR


def nodes_place(*, data: dict, placement: dict, actor, source: str = Source.ADMIN) -> PlacementReport:
    """One node_create per node (each its own transaction, placed race-free by the service), in
    name order; the first no_host_available stops it (the fleet is full for the rest)."""
    report = PlacementReport(count=data["count"])
    for number, name in enumerate(names(data["name_prefix"], data["count"]), start=1):
        try:
            change = node_create(
                name=name,
                image_id=data["image"].pk,
                properties=data["properties"],
                placement=placement,
                actor=actor,
                source=source,
            )
        except NoHostAvailable as error:
            report.stopped_by, report.not_placed = error.detail, data["count"] - number + 1
            break
        except ApplicationError as error:
            report.failed.append((name, error.detail))
        else:
            report.placed.append(change)
    return report


def _percent(score) -> str:
    return f"{float(score) * 100:.1f} %"


def _free(placement: dict) -> list[dict]:
    free = [
        {"label": RESOURCE_LABELS[name], "amount": human_amount(name, placement["free_after"][name])}
        for name in RESOURCES
    ]
    slots = placement["free_slots_after"]
    return [*free, {"label": "slots", "amount": "no limit" if slots is None else str(slots)}]


def _reason_text(host: dict, region: str | None) -> str:
    texts = []
    for reason in host["reasons"]:
        if reason == "scheduling":
            texts.append("not automatic (manual or draining)")
        elif reason == "region":
            texts.append(f"outside region {region if region else '(none)'}")
    texts.extend(
        shortfall_text(host["host_name"], shortfall)
        for shortfall in host["shortfalls"]
        if shortfall["resource"] in (*RESOURCES, NODE_COUNT)
    )
    return "; ".join(texts)


def plan_context(result, data: dict, placement: dict) -> dict:
    """The plan page's rows: one per node placed, one for those that would not be."""
    plan = result.plan
    node_names = names(data["name_prefix"], data["count"])
    rows = [
        {
            "name": name,
            "host": row["host_name"],
            "host_id": row["host_id"],
            "score": _percent(row["score"]),
            "free_after": _free(row),
        }
        for name, row in zip(node_names, plan.placements, strict=False)
    ]
    region = placement.get("region")
    return {
        "image": data["image"],
        "requested": ", ".join(human_amount(name, plan.requested[name]) for name in RESOURCES),
        "rows": rows,
        "placed": plan.placed,
        "count": plan.count,
        "hosts_used": len({row["host_id"] for row in rows}),
        "unplaced_names": node_names[plan.placed :],
        "refusal": plan.error.detail if plan.error is not None else "",
        "hosts_considered": plan.hosts_considered,
        "hosts": [{**host, "score": _percent(host["score"]), "why": _reason_text(host, region)} for host in plan.hosts],
        "strategy": placement.get("strategy", "binpack"),
        "region": "any region" if region is None else f"region {region}" if region else "hosts without a region",
        "free_columns": 2 + len(RESOURCES) + 1,
        "spread_protocol": placement.get("spread_protocol", False),
    }


@require_http_methods(["GET", "POST"])
def place_nodes_view(request, *, model_admin):
    """GET: the form. POST step=plan: the plan (nothing written). POST step=apply: one
    node_create per node, one summary message, then the node list filtered by the prefix."""
    if not model_admin.has_add_permission(request):
        raise PermissionDenied
    step = request.POST.get("step", "") if request.method == "POST" else ""
    form = PlaceNodesForm(request.POST if request.method == "POST" else None)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": "Place nodes",
        "subtitle": None,
        "form": form,
        "media": model_admin.media,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }
    if step not in ("plan", "apply") or not form.is_valid():
        return TemplateResponse(request, "admin/nodes/node/place_form.html", context)
    data, placement = form.cleaned_data, form.placement()
    if step == "apply":
        report = nodes_place(data=data, placement=placement, actor=request.user)
        for change in report.placed:
            model_admin.log_addition(request, change.node, [{"added": {}}])
        model_admin.message_user(request, report.summary(), report.level)
        changelist = reverse("admin:nodes_node_changelist")
        query = "?" + urlencode({"q": f"{data['name_prefix']}-"}) if report.placed else ""
        return HttpResponseRedirect(changelist + query)
    try:
        result = node_placement_plan(
            image_id=data["image"].pk, properties=data["properties"], placement=placement, count=data["count"]
        )
    except ApplicationError as error:
        add_errors(form, error)
        return TemplateResponse(request, "admin/nodes/node/place_form.html", context)
    context.update(plan_context(result, data, placement), title=f"Place {data['count']} {data['image']} nodes")
    return TemplateResponse(request, "admin/nodes/node/place_plan.html", context)
