"""The fleet at a glance (§12): THE selector the admin home and GET /api/v1/fleet/ both read, so
they never disagree. A fixed number of statements whatever the fleet's size, built from host rows,
counters and indexed counts, never a scan of the nodes table:

- capacity, hosts and node slots: one grouped statement over host rows (hosts.fleet.region_rows);
- tiles (or, past hosts.fleet.TILE_LIMIT hosts, a histogram by decile): one statement over host rows;
- drift: the last 30 AuditRuns, one statement (the newest holds the ids of the hosts it found drifted);
- nodes by state: counted on the partial index of the few states (`node_state_few`); running is
  Σ node_count minus those;
- commands: pending, acked and overdue on the partial index of open commands, one statement;
- rollouts: by state, and the active ones with their rows counted (two statements);
- outcomes: NodeLog of the last 24 hours by hour, on its created_at index, one statement;
- headroom: the images (one statement), then one statement over host rows per protocol.

Each panel is read only for a user who may view what it counts (nodes.view_node,
nodes.view_command, nodes.view_rollout; headroom nodes.view_image; the change permission reads
too, as in the admin); it is None otherwise."""

from datetime import UTC, datetime, timedelta

from django.db.models import Count, Q
from django.db.models.functions import TruncHour
from django.utils import timezone
from packaging.version import InvalidVersion, Version

from config.units import RESOURCES
from hosts.fleet import TILE_LIMIT, decile_histogram, fleet_totals, host_tiles, region_rows
from hosts.models import AuditRun
from hosts.placement import headroom
from nodes.agent.overdue import overdue_condition
from nodes.models import FEW_STATES, Command, CommandStatus, Image, Node, NodeEvent, NodeLog
from nodes.rollouts.models import Rollout, RolloutNodeStatus, RolloutState
from nodes.rollouts.selectors import rollout_counts

#: How many audits the drift chart shows, and how many active rollouts the page lists.
AUDIT_HISTORY = 30
ACTIVE_ROLLOUTS_SHOWN = 20
#: Rollout states the page shows in flight.
IN_FLIGHT_ROLLOUTS = (RolloutState.RUNNING, RolloutState.PAUSED, RolloutState.HALTED)
#: Outcome -> the NodeLog events it counts (§12).
OUTCOME_EVENTS = {
    "succeeded": (NodeEvent.CREATE_SUCCEEDED, NodeEvent.UPGRADE_SUCCEEDED),
    "failed": (NodeEvent.CREATE_FAILED, NodeEvent.UPGRADE_FAILED, NodeEvent.DELETE_FAILED),
    "rolled_back": (NodeEvent.UPGRADE_ROLLED_BACK,),
}
OUTCOME_OF_EVENT = {event: outcome for outcome, events in OUTCOME_EVENTS.items() for event in events}
HOURS = 24

#: panel -> the model whose view permission it needs (the change permission reads too, as in the admin).
PANEL_MODELS = {
    "nodes": "nodes.node",
    "outcomes": "nodes.node",
    "commands": "nodes.command",
    "rollouts": "nodes.rollout",
    "headroom": "nodes.image",
}
#: The page itself (and GET /api/v1/fleet/).
FLEET_MODEL = "hosts.host"


def may_view(user, model: str) -> bool:
    """`<app>.view_<model>` or `<app>.change_<model>`, as the admin's has_view_permission asks."""
    app_label, name = model.split(".")
    return user.has_perm(f"{app_label}.view_{name}") or user.has_perm(f"{app_label}.change_{name}")


def visible_panels(user) -> set[str]:
    """The panels a user may see (the entry points check the page's own permission, FLEET_MODEL)."""
    return {panel for panel, model in PANEL_MODELS.items() if may_view(user, model)}


def _audits() -> tuple[dict | None, list[dict], set[str]]:
    runs = list(
        AuditRun.objects.only("created_at", "drift", "node_findings", "drifted_host_ids", "hosts_checked")[
            :AUDIT_HISTORY
        ]
    )
    history = [
        {"time": run.created_at, "host_findings": run.host_findings, "node_findings": run.node_findings}
        for run in reversed(runs)
    ]
    if not runs:
        return None, history, set()
    last = runs[0]
    drifted = set(last.drifted_host_ids)
    drifted_count = max(len(drifted), *(entry.get("hosts", 0) for entry in last.drift.values()), 0)
    last_audit = {**history[-1], "hosts_checked": last.hosts_checked, "drifted_hosts": drifted_count}
    return last_audit, history, drifted


def _node_states(slots_used: int) -> dict[str, int]:
    few = dict.fromkeys(map(str, FEW_STATES), 0)
    rows = Node.objects.filter(state__in=FEW_STATES).order_by().values_list("state").annotate(n=Count("pk"))
    few.update(dict(rows))
    return {"running": slots_used - sum(few.values()), **few}


def _commands(now: datetime) -> dict[str, int]:
    return Command.objects.filter(status__in=[CommandStatus.PENDING, CommandStatus.ACKED]).aggregate(
        pending=Count("pk", filter=Q(status=CommandStatus.PENDING)),
        acked=Count("pk", filter=Q(status=CommandStatus.ACKED)),
        overdue=Count("pk", filter=overdue_condition(now=now)),
    )


def _rollouts() -> tuple[dict[str, int], list[dict]]:
    by_state = dict.fromkeys(RolloutState.values, 0)
    by_state.update(dict(Rollout.objects.order_by().values_list("state").annotate(n=Count("pk"))))
    active = list(
        Rollout.objects.filter(state__in=IN_FLIGHT_ROLLOUTS)
        .select_related("image")
        .only("id", "state", "current_batch", "batches", "created_at", "image__protocol", "image__version")[
            :ACTIVE_ROLLOUTS_SHOWN
        ]
    )
    counts = rollout_counts([rollout.pk for rollout in active]) if active else {}
    listed = []
    for rollout in active:
        rows = counts[rollout.pk]
        progress = {
            "succeeded": rows[RolloutNodeStatus.SUCCEEDED],
            "failed": rows[RolloutNodeStatus.FAILED] + rows[RolloutNodeStatus.ROLLED_BACK],
            "refused": rows[RolloutNodeStatus.REFUSED],
            "pending": rows[RolloutNodeStatus.PENDING] + rows[RolloutNodeStatus.UPGRADING],
        }
        listed.append({"rollout": rollout, "counts": rows, "progress": progress, "total": sum(progress.values())})
    return by_state, listed


def _outcomes(now: datetime) -> list[dict]:
    last_hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    hours = [last_hour - timedelta(hours=n) for n in range(HOURS - 1, -1, -1)]
    table = {hour: dict.fromkeys(OUTCOME_EVENTS, 0) for hour in hours}
    rows = (
        NodeLog.objects.filter(created_at__gte=hours[0], event__in=list(OUTCOME_OF_EVENT))
        .annotate(hour=TruncHour("created_at", tzinfo=UTC))
        .order_by()
        .values_list("hour", "event")
        .annotate(n=Count("pk"))
    )
    for hour, event, n in rows:
        if hour in table:
            table[hour][OUTCOME_OF_EVENT[event]] += n
    return [{"hour": hour, **table[hour]} for hour in hours]


def _version(text: str):
    try:
        return (1, Version(text))
    except InvalidVersion:
        return (0, text)


def _headroom() -> list[dict]:
    """Per protocol, its newest image (PEP 440 order; unparsable versions below any parsable one)
    and how many more nodes of its default config fit (§11 headroom: default config = minimums)."""
    newest: dict[str, Image] = {}
    for image in Image.objects.only("id", "protocol", "version", *(f"min_{name}" for name in RESOURCES)):
        current = newest.get(image.protocol)
        if current is None or _version(image.version) > _version(current.version):
            newest[image.protocol] = image
    entries = []
    for protocol in sorted(newest):
        image = newest[protocol]
        requested = {name: getattr(image, f"min_{name}") for name in RESOURCES}
        room = headroom(requested)
        entries.append(
            {
                "image_id": image.pk,
                "protocol": protocol,
                "version": image.version,
                "requested": room.requested,
                "nodes": room.nodes,
                "hosts_with_room": room.hosts_with_room,
                "regions": room.regions,
            }
        )
    return entries


def fleet_overview(*, user, tiles: bool = False, now: datetime | None = None) -> dict:
    """The numbers of the fleet page for `user` (who has hosts.view_host). `tiles`: also the hosts'
    tiles, or past TILE_LIMIT hosts a histogram per region (the admin page; the API does not)."""
    now = now or timezone.now()
    panels = visible_panels(user)
    regions = region_rows(now=now)
    total = fleet_totals(regions)
    last_audit, audits, drifted = _audits()
    overview = {
        "generated_at": now,
        "capacity": {
            **{name: total[name] for name in RESOURCES},
            "node_slots": total["node_slots"],
            "regions": regions,
        },
        "hosts": {
            "total": total["hosts"],
            "offline": total["offline"],
            "over_allocated": total["over_allocated"],
            "drifted": last_audit["drifted_hosts"] if last_audit else 0,
            "scheduling": total["scheduling"],
        },
        "last_audit": last_audit,
        "audits": audits,
        "tiles": None,
        "histogram": None,
        "nodes": _node_states(total["node_slots"]["used"]) if "nodes" in panels else None,
        "commands": _commands(now) if "commands" in panels else None,
        "rollouts": None,
        "active_rollouts": None,
        "outcomes": _outcomes(now) if "outcomes" in panels else None,
        "headroom": _headroom() if "headroom" in panels else None,
    }
    if "rollouts" in panels:
        overview["rollouts"], overview["active_rollouts"] = _rollouts()
    if tiles:
        if total["hosts"] <= TILE_LIMIT:
            overview["tiles"] = host_tiles(drifted=drifted, now=now)
        else:
            overview["histogram"] = decile_histogram()
    return overview
