"""`{% fleet_page as fleet %}` on the admin home (§12): the numbers of nodes.overview (the selector
GET /api/v1/fleet/ reads too) dressed for people — human units, the filtered lists each number
counts, the charts as SVG (nodes.admin.charts)."""

from html import escape
from urllib.parse import urlencode

from django import template
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.utils.timesince import timesince

from config.units import RESOURCE_LABELS, RESOURCES, human_amount
from hosts.fleet import OVER_BUCKET
from nodes.admin.charts import capacity_bar, histogram, level, stacked_columns
from nodes.overview import FLEET_MODEL, fleet_overview, may_view

register = template.Library()

DECILE_LABELS = [*(f"{10 * n}-{10 * n + 10} %" for n in range(OVER_BUCKET)), "over"]
OUTCOME_SERIES = [("succeeded", "nf-c-ok"), ("failed", "nf-c-over"), ("rolled_back", "nf-c-high")]
DRIFT_SERIES = [("host_findings", "nf-c-over"), ("node_findings", "nf-c-high")]


def changelist(model: str, **query) -> str:
    url = reverse(f"admin:{model.replace('.', '_')}_changelist")
    return f"{url}?{urlencode(query)}" if query else url


def _amounts(name: str, amounts: dict) -> dict:
    used, allocatable, physical = amounts["used"], amounts["allocatable"], amounts["physical"]
    texts = {kind: human_amount(name, amounts[kind]) for kind in ("used", "allocatable", "physical")}
    percent = f"{used * 100 / allocatable:.0f} %" if allocatable else ("over" if used else "-")
    label = (
        f"{RESOURCE_LABELS[name]}: {texts['used']} used of {texts['allocatable']} allocatable, "
        f"{texts['physical']} physical"
    )
    return {
        "name": name,
        "label": RESOURCE_LABELS[name],
        **texts,
        "percent": percent,
        "level": level(used, allocatable),
        "bar": capacity_bar(used, allocatable, physical, label),
    }


def _capacity_rows(row: dict) -> list[dict]:
    return [_amounts(name, row[name]) for name in RESOURCES]


PLACEHOLDER = "00000000-0000-0000-0000-000000000000"


def _tile(tile: dict, host_url: str) -> dict:
    host = tile["host"]
    numbers = [
        f"{RESOURCE_LABELS[name]} {human_amount(name, getattr(host, 'node_' + name))} / "
        f"{human_amount(name, getattr(host, 'allocatable_' + name))} ({tile['utilisation'][name] * 100:.0f} %)"
        for name in RESOURCES
    ]
    slots = f"{host.node_count} / {host.max_nodes}" if host.max_nodes is not None else f"{host.node_count} (no limit)"
    numbers.append(f"nodes {slots}")
    bucket = tile["bucket"]
    return {
        "name": host.name,
        "url": host_url.format(host.pk),
        "level": "over" if bucket == OVER_BUCKET else f"d{bucket}",
        "percent": f"{tile['highest'] * 100:.0f} %",
        "marks": tile["marks"],
        "title": "; ".join([host.name, *numbers, *tile["marks"]]),
        "numbers": numbers,
    }


def _tile_html(tile: dict) -> str:
    """One tile's markup, built here (stdlib escaping, one reverse() for all tiles) rather than by a
    template loop: 2,000 tiles render in a fraction of the time (docs/performance.md)."""
    marks = "".join(f'<span class="nf-mark nf-mark-{mark}">{mark}</span>' for mark in tile["marks"])
    return (
        f'<li><a class="nf-tile nf-tile-{tile["level"]}{"".join(f" nf-is-{mark}" for mark in tile["marks"])}" '
        f'href="{escape(tile["url"])}" title="{escape(tile["title"])}" data-host="{escape(tile["name"])}">'
        f'<span class="nf-tile-name">{escape(tile["name"])}</span><span class="nf-tile-pct">{tile["percent"]}</span>'
        f'{marks}<span class="nf-visually-hidden">{escape("; ".join(tile["numbers"]))}</span></a></li>'
    )


def _by_region(tiles: list[dict]) -> list[dict]:
    regions: list[dict] = []
    host_url = reverse("admin:hosts_host_change", args=[PLACEHOLDER]).replace(PLACEHOLDER, "{}")
    for tile in tiles:
        if not regions or regions[-1]["region"] != tile["region"]:
            regions.append({"region": tile["region"], "tiles": []})
        regions[-1]["tiles"].append(_tile_html(_tile(tile, host_url)))
    for region in regions:
        region["count"] = len(region["tiles"])
        region["tiles"] = mark_safe("".join(region["tiles"]))  # every value in it escaped by _tile_html
    return regions


@register.filter
def sees_fleet(user) -> bool:
    """Whether the admin home opens on the fleet for this user (hosts.view_host, or change)."""
    return may_view(user, FLEET_MODEL)


@register.simple_tag(takes_context=True)
def fleet_page(context) -> dict:
    request = context["request"]
    fleet = fleet_overview(user=request.user, tiles=True)
    capacity = fleet["capacity"]
    page = {
        "fleet": fleet,
        "capacity_groups": [
            {
                "name": "Fleet",
                "css": "nf-total",
                "hosts": fleet["hosts"]["total"],
                "rows": _capacity_rows(capacity),
                "slots": capacity["node_slots"],
                "url": changelist("hosts.host"),
            },
            *(
                {
                    "name": region["region"] or "no region",
                    "css": "nf-region",
                    "hosts": region["hosts"],
                    "rows": _capacity_rows(region),
                    "slots": region["node_slots"],
                    "url": changelist("hosts.host", region=region["region"]),
                }
                for region in capacity["regions"]
            ),
        ],
        "hosts_url": changelist("hosts.host"),
        "offline_url": changelist("hosts.host", agent="offline"),
        "over_url": changelist("hosts.host", over_capacity="yes"),
        "scheduling": [
            {"value": value, "count": count, "url": changelist("hosts.host", scheduling=value)}
            for value, count in fleet["hosts"]["scheduling"].items()
        ],
        "audit_url": reverse("admin:fleet_audit"),
    }
    if fleet["tiles"] is not None:
        page["tile_regions"] = _by_region(fleet["tiles"])
    if fleet["histogram"] is not None:
        page["histograms"] = [
            {
                "region": region,
                "counts": list(zip(DECILE_LABELS, counts, strict=True)),
                "chart": histogram(counts, DECILE_LABELS, label=f"Hosts of {region or 'no region'} by utilisation"),
            }
            for region, counts in fleet["histogram"].items()
        ]
    if fleet["last_audit"] is not None:
        page["audit_age"] = timesince(fleet["last_audit"]["time"], timezone.now())
        page["drifted_url"] = changelist("hosts.host", last_audit="drifted")
    if fleet["audits"]:
        page["audit_chart"] = stacked_columns(
            [{**run, "when": f"{run['time']:%Y-%m-%d %H:%M}"} for run in fleet["audits"]],
            DRIFT_SERIES,
            label="Findings of the last audits",
            key="when",
            height=50,
        )
    if fleet["nodes"] is not None:
        page["node_states"] = [
            {"state": state, "count": count, "url": changelist("nodes.node", state__exact=state)}
            for state, count in fleet["nodes"].items()
        ]
    if fleet["commands"] is not None:
        links = {
            "pending": changelist("nodes.command", status__exact="pending"),
            "acked": changelist("nodes.command", status__exact="acked"),
            "overdue": changelist("nodes.command", overdue="yes"),
        }
        page["commands"] = [
            {"status": status, "count": fleet["commands"][status], "url": url} for status, url in links.items()
        ]
    if fleet["rollouts"] is not None:
        page["rollouts"] = [
            {"state": state, "count": fleet["rollouts"][state], "url": changelist("nodes.rollout", state__exact=state)}
            for state in ("running", "paused", "halted")
        ]
        page["active_rollouts"] = [
            {
                **entry,
                "url": reverse("admin:nodes_rollout_change", args=[entry["rollout"].pk]),
                "bar": [
                    (part, n, n * 100 / entry["total"] if entry["total"] else 0)
                    for part, n in entry["progress"].items()
                ],
            }
            for entry in fleet["active_rollouts"]
        ]
    if fleet["outcomes"] is not None:
        hours = [{**entry, "when": f"{entry['hour']:%H:00}"} for entry in fleet["outcomes"]]
        page["outcomes"] = hours
        page["outcome_totals"] = {field: sum(entry[field] for entry in hours) for field, _ in OUTCOME_SERIES}
        page["outcome_chart"] = stacked_columns(
            hours, OUTCOME_SERIES, label="Agent outcomes per hour, last 24 hours (UTC)", key="when"
        )
    if fleet["headroom"] is not None:
        page["headroom"] = [
            {**entry, "image_url": reverse("admin:nodes_image_change", args=[entry["image_id"]])}
            for entry in fleet["headroom"]
        ]
    return page
