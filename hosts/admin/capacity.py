"""The capacity model (§11) in the hosts admin: the host form (capacity, reserve, ratios, slots,
region, scheduling), the filters by region and scheduling, and how allocatable, slots,
reserve and ratios read in the list and on the host's page. The host is saved by
hosts.services (hosts/admin/actions.py), never by the form."""

from decimal import Decimal

from django.contrib import admin
from django.utils.html import format_html, format_html_join

from config.units import RESOURCE_LABELS, RESOURCES, human_amount, human_bytes, human_cores
from hosts.admin.helpers import PrintableFieldsForm, usage_bar
from hosts.capacity import ALLOCATABLE, COUNTER, NODE_COUNT, RATIO, RESERVED, allocatable, free_slots
from hosts.models import HOST_INPUT_FIELDS, Host, Scheduling

#: The region filter's choice for hosts without a region ("" is not a usable query value).
NO_REGION = "(none)"
#: What an empty reserve or ratio box means: the model's default (nothing reserved, ratio 1).
DEFAULTS = {**dict.fromkeys(RESERVED.values(), 0), **dict.fromkeys(RATIO.values(), Decimal(1))}


def exact_bytes(amount: int) -> str:
    return f"{human_bytes(amount)} ({amount:,} bytes)"


def _ratio_text(ratio: Decimal) -> str:
    """`1.5`, `4`, `0.75`: the ratio without trailing zeros."""
    return f"{ratio.normalize():f}"


class HostForm(PrintableFieldsForm):
    """Every field a person may set (hosts.models.HOST_INPUT_FIELDS), typed in exact integers
    and decimals; the help under each says what it holds now in human units. An empty reserve
    or ratio is the default (0, 1); an empty max_nodes is no limit."""

    printable_fields = ("name", "region")

    class Meta:
        model = Host
        fields = list(HOST_INPUT_FIELDS)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Staff who may only view get a form without these fields (they show read-only); a new
        # host has a pk already (its UUID default), so `_state.adding` tells that it has no values.
        adding = self.instance._state.adding
        for name, field in self.fields.items():
            if name in DEFAULTS or name == "scheduling":
                field.required = False
        helps = {"cpu_cores": "Cores.", "reserved_cpu_cores": "Cores the host keeps for itself (its OS, the agent)."}
        for name in ("memory_bytes", "disk_bytes", RESERVED["memory_bytes"], RESERVED["disk_bytes"]):
            now = "" if adding else f" Now {exact_bytes(getattr(self.instance, name))}."
            helps[name] = f"Bytes (1 GiB = 1073741824).{now}"
        for resource, name in RATIO.items():
            helps[name] = (
                f"Overcommit of {RESOURCE_LABELS[resource]}: allocatable = (capacity - reserved) x ratio, "
                "above 0 and at most 1000, 4 decimal places (1: none)."
            )
        helps["max_nodes"] = "Node slots: at most this many nodes. Empty: no limit."
        helps["region"] = "Placement can be asked for one region. Empty: no region."
        helps["scheduling"] = (
            "automatic: placement may choose it; manual: only nodes that name it; draining: no new "
            "node at all (its nodes stay and may be upgraded and deleted)."
        )
        for name, text in helps.items():
            if name in self.fields:
                self.fields[name].help_text = text

    def clean(self):
        # Before the model's validation (its CHECK constraints), which reads these values.
        cleaned = super().clean()
        for name, default in DEFAULTS.items():
            if name in self.fields and cleaned.get(name) is None and name not in self.errors:
                cleaned[name] = default
        if "scheduling" in self.fields and not cleaned.get("scheduling") and "scheduling" not in self.errors:
            cleaned["scheduling"] = self.instance.scheduling  # left out of the post: as it is
        return cleaned


def values_of(form: HostForm, *, change: bool) -> dict:
    """What hosts.services.host_create / host_update take from the form: on a change only the
    fields the person changed (the others, as read when the page was posted, are not written)."""
    names = form.changed_data if change else list(form.cleaned_data)
    return {name: form.cleaned_data[name] for name in names if name in HOST_INPUT_FIELDS}


# ---------------------------------------------------------------------------------------------
# Filters


class RegionFilter(admin.SimpleListFilter):
    title = "region"
    parameter_name = "region"

    def lookups(self, request, model_admin):
        regions = Host.objects.order_by("region").values_list("region", flat=True).distinct()
        return [(region or NO_REGION, region or "(no region)") for region in regions]

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        return queryset.filter(region="" if self.value() == NO_REGION else self.value())


class SchedulingFilter(admin.SimpleListFilter):
    title = "scheduling"
    parameter_name = "scheduling"

    def lookups(self, request, model_admin):
        return [(value, value) for value in Scheduling.values]

    def queryset(self, request, queryset):
        return queryset.filter(scheduling=self.value()) if self.value() in Scheduling.values else queryset


# ---------------------------------------------------------------------------------------------
# How the capacity model reads


def physical_text(host: Host, resource: str) -> str:
    """The tooltip's machine size: `64 cores, 8 reserved, ratio 1.5`."""
    parts = [human_amount(resource, getattr(host, resource))]
    if getattr(host, RESERVED[resource]):
        parts.append(f"{human_amount(resource, getattr(host, RESERVED[resource]))} reserved")
    if getattr(host, RATIO[resource]) != 1:
        parts.append(f"ratio {_ratio_text(getattr(host, RATIO[resource]))}")
    return ", ".join(parts)


def usage(host: Host, resource: str):
    """Used against allocatable (§11): the bar, the physical size, reserve and ratio in the tooltip."""
    used, capacity = getattr(host, COUNTER[resource]), allocatable(host, resource)
    if resource == "cpu_cores":
        text = f"{used} / {human_cores(capacity)}"
    else:
        text = f"{human_bytes(used)} / {human_bytes(capacity)}"
    bar = usage_bar(used, capacity, text, physical=physical_text(host, resource))
    model = model_text(host, resource)
    return format_html('{}<span class="nf-model">{}</span>', bar, model) if model else bar


def where_text(host: Host):
    """Under a host's name in the list: its region and scheduling (`eu-1 · draining`)."""
    return format_html(
        # The newline keeps the name a word of its own in the cell's text (a search for "host-01 ").
        '\n<br><span class="nf-where"><span class="nf-region">{}</span> {}</span>',
        host.region or "—",
        scheduling_badge(host),
    )


def scheduling_badge(host: Host):
    """`automatic` plain; `manual` and `draining` as badges (placement passes them by)."""
    if host.scheduling == Scheduling.AUTOMATIC:
        return format_html('<span class="nf-muted">{}</span>', host.scheduling)
    return format_html(
        '<span class="nf-badge nf-state nf-scheduling-{}" title="{}">{}</span>',
        host.scheduling,
        host.get_scheduling_display(),
        host.scheduling,
    )


def slots_text(host: Host) -> str:
    """`8` (no slot limit) or `8 / 10` (max_nodes)."""
    return str(host.node_count) if host.max_nodes is None else f"{host.node_count} / {host.max_nodes}"


def model_text(host: Host, resource: str) -> str:
    """A resource's ratio and reserve when they differ from the defaults: `x1.5, 16 cores reserved`."""
    bits = []
    if getattr(host, RATIO[resource]) != 1:
        bits.append(f"x{_ratio_text(getattr(host, RATIO[resource]))}")
    if getattr(host, RESERVED[resource]):
        bits.append(f"{human_amount(resource, getattr(host, RESERVED[resource]))} reserved")
    return ", ".join(bits)


def allocatable_text(host: Host):
    """On the host's page: per resource, allocatable = (capacity - reserved) x ratio."""
    rows = []
    for resource in RESOURCES:
        rows.append(
            (
                RESOURCE_LABELS[resource],
                human_amount(resource, getattr(host, ALLOCATABLE[resource])),
                human_amount(resource, getattr(host, resource)),
                human_amount(resource, getattr(host, RESERVED[resource])),
                _ratio_text(getattr(host, RATIO[resource])),
            )
        )
    slots = "no limit" if host.max_nodes is None else f"{host.max_nodes} ({free_slots(host)} free)"
    return format_html(
        '<table class="nf-history nf-allocatable"><thead><tr><th>resource</th><th>allocatable</th>'
        "<th>= (capacity</th><th>- reserved)</th><th>x ratio</th></tr></thead><tbody>{}</tbody></table>"
        "<p>Node slots: {}</p>",
        format_html_join("", "<tr><td>{}</td><td><strong>{}</strong></td><td>{}</td><td>{}</td><td>{}</td></tr>", rows),
        slots,
    )


def over_allocated_text(host: Host, over: list[str]) -> str:
    """The admin's warning after a save that leaves the host over-allocated (§11), naming each
    resource: `host-3 is now over-allocated: memory 40.0 GiB used of 32.0 GiB allocatable; …`."""
    parts = []
    for name in over:
        if name == NODE_COUNT:
            parts.append(f"node slots {host.node_count} used of {host.max_nodes}")
        else:
            parts.append(
                f"{RESOURCE_LABELS[name]} {human_amount(name, getattr(host, COUNTER[name]))} used of "
                f"{human_amount(name, allocatable(host, name))} allocatable"
            )
    return (
        f"{host.name} is now over-allocated: {'; '.join(parts)}. Its nodes stay; no node that needs more "
        "of that fits until some are deleted."
    )
