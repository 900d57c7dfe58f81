"""A rollout's plan: which nodes, in which order and batch, and whether each fits — the
upgrade's own computation (nodes.changes.upgrade_outcome) applied node after node, each host's
counters carried from one of its nodes to the next. Reads only: the dry run and rollout_create
share it."""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from django.db.models import OuterRef, Q, Subquery

from config.errors import InvalidInput, NotFound
from config.units import RESOURCES
from hosts.capacity import allocatable
from hosts.models import COUNTER_OF_RESOURCE, Host
from nodes.changes import image_spec, upgrade_outcome
from nodes.models import Image, Node, NodeState
from nodes.resources import Resources
from nodes.rollouts.models import ACTIVE_STATES, RolloutNode, RolloutNodeStatus

#: Node states a rollout may move (§10): others have a change in flight.
SELECTABLE_STATES = (NodeState.RUNNING, "failed")


@dataclass(frozen=True)
class Selection:
    """What a rollout is asked to move, and how (the API's and CLI's input, checked)."""

    image: Image
    from_versions: tuple[str, ...] = ()
    host_ids: tuple = ()
    node_ids: tuple = ()
    batch_size: int = 25
    canary: int = 1
    pause_after_canary: bool = True
    max_failures: int = 1
    result_timeout_seconds: int = 3600


@dataclass(frozen=True)
class PlannedNode:
    node_id: object
    node_name: str
    host_id: object
    host_name: str
    position: int
    batch: int
    status: str
    reason: str
    old: Resources
    new: Resources
    fits: dict[str, bool] | None  # None: not computed (in another rollout, a change in flight)


@dataclass
class HostTotals:
    """One host's share of the plan: its nodes to upgrade, skipped, the sum of their deltas and
    the host's counters and free capacity after all of them."""

    host_id: object
    host_name: str
    capacity: Resources
    selected: int = 0
    skipped: int = 0
    old: Resources = field(default_factory=Resources)
    new: Resources = field(default_factory=Resources)
    after: Resources = field(default_factory=Resources)

    @property
    def delta(self) -> Resources:
        return self.new - self.old

    @property
    def free_after(self) -> Resources:
        return self.capacity - self.after


@dataclass(frozen=True)
class Plan:
    selection: Selection
    nodes: list[PlannedNode]
    hosts: list[HostTotals]
    batches: int

    @property
    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(RolloutNodeStatus.values, 0)
        for node in self.nodes:
            counts[node.status] += 1
        return counts

    @property
    def old(self) -> Resources:
        return sum((host.old for host in self.hosts), Resources())

    @property
    def new(self) -> Resources:
        return sum((host.new for host in self.hosts), Resources())


def selection_check(
    *,
    image_id,
    from_versions=(),
    host_ids=(),
    node_ids=(),
    batch_size=25,
    canary=1,
    max_failures=1,
    result_timeout_seconds=3600,
    pause_after_canary=True,
) -> Selection:
    """The input of a rollout checked: numbers in range (`invalid`), every id names something
    (`not_found`)."""
    errors = {}
    for name, value, least in (
        ("batch_size", batch_size, 1),
        ("canary", canary, 0),
        ("max_failures", max_failures, 1),
        ("result_timeout_seconds", result_timeout_seconds, 1),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or not least <= value <= 2**31 - 1:
            errors[name] = [f"Must be an integer from {least} to {2**31 - 1}."]
    if errors:
        raise InvalidInput("The rollout cannot be planned from this input.", errors=errors)
    image = _existing(Image.objects.all(), [image_id], "image")[0]
    hosts = _existing(Host.objects.all(), host_ids, "host")
    nodes = _existing(Node.objects.all(), node_ids, "node")
    return Selection(
        image=image,
        from_versions=tuple(dict.fromkeys(from_versions)),
        host_ids=tuple(host.pk for host in hosts),
        node_ids=tuple(node.pk for node in nodes),
        batch_size=batch_size,
        canary=canary,
        pause_after_canary=pause_after_canary,
        max_failures=max_failures,
        result_timeout_seconds=result_timeout_seconds,
    )


def _existing(queryset, ids: Iterable, noun: str) -> list:
    ids = list(dict.fromkeys(ids))
    if not ids:
        return []
    found = {str(obj.pk): obj for obj in queryset.filter(pk__in=ids)}
    missing = [str(pk) for pk in ids if str(pk) not in found]
    if missing:
        raise NotFound(f"No {noun} with id {missing[0]}.")
    return [found[str(pk)] for pk in ids]


def _candidates(selection: Selection):
    """The selection in its order (host name, then node name), each node with its host and the
    active rollout it is already in, if any. Listed nodes come whatever they run: each that
    does not qualify is skipped with the reason."""
    image = selection.image
    if selection.node_ids:
        query = Q(pk__in=selection.node_ids)
    else:
        query = Q(image__protocol=image.protocol, state__in=SELECTABLE_STATES) & ~Q(image_id=image.pk)
    if selection.from_versions:
        query &= Q(image__version__in=selection.from_versions)
    if selection.host_ids:
        query &= Q(host_id__in=selection.host_ids)
    in_rollout = RolloutNode.objects.filter(
        node_id=OuterRef("pk"), holds_node=True, rollout__state__in=ACTIVE_STATES
    ).values("rollout_id")[:1]
    return (
        Node.objects.filter(query)
        .select_related("host")
        .annotate(in_rollout=Subquery(in_rollout))
        .order_by("host__name", "name")
    )


def rollout_plan(selection: Selection) -> Plan:
    """The plan of a rollout (§10), written nowhere: per node old -> new allocation and whether
    it fits, counting the earlier nodes of the same host; skipped nodes with the reason."""
    candidates = _candidates(selection)
    image_ids = set(candidates.values_list("image_id", flat=True).distinct()) | {selection.image.pk}
    specs = {
        image.pk: image_spec(image) for image in Image.objects.filter(pk__in=image_ids).prefetch_related("properties")
    }
    target = specs[selection.image.pk]
    nodes, hosts = [], {}
    for position, node in enumerate(candidates.iterator(chunk_size=2000), start=1):
        totals = hosts.get(node.host_id)
        if totals is None:
            totals = hosts[node.host_id] = HostTotals(
                node.host_id, node.host.name, _allocatable(node.host), after=_counters(node.host)
            )
            current_host = node.host
        node.host = current_host
        old = Resources.of(node)
        status, reason, new, fits = RolloutNodeStatus.SKIPPED, "", old, None
        if node.in_rollout:
            reason = f"in rollout {node.in_rollout}"
        elif node.state not in SELECTABLE_STATES:
            reason = f"Node {node.name} is {node.state}: a change of it is still in flight."
        else:
            # A running or failed node has no open command (§9), so none is passed.
            outcome = upgrade_outcome(node, specs[node.image_id], target, None, force=False)
            new, fits = outcome.new, outcome.fits
            if outcome.error:
                reason = outcome.error.detail
            else:
                status = RolloutNodeStatus.PENDING
                current_host = outcome.host  # the next node of this host counts this one
                totals.after = _counters(current_host)
        if status == RolloutNodeStatus.PENDING:
            totals.selected += 1
            totals.old += old
            totals.new += new
        else:
            totals.skipped += 1
        nodes.append(
            PlannedNode(node.pk, node.name, node.host_id, node.host.name, position, 0, status, reason, old, new, fits)
        )
    nodes, batches = _batched(nodes, canary=selection.canary, batch_size=selection.batch_size)
    return Plan(selection=selection, nodes=nodes, hosts=list(hosts.values()), batches=batches)


def _allocatable(host: Host) -> Resources:
    """What the host can give (§11): free_after is measured against it, as the fit is."""
    return Resources(*(allocatable(host, name) for name in RESOURCES))


def _counters(host: Host) -> Resources:
    return Resources(*(getattr(host, COUNTER_OF_RESOURCE[name]) for name in RESOURCES))


def _batched(nodes: list[PlannedNode], *, canary: int, batch_size: int) -> tuple[list[PlannedNode], int]:
    """Batch numbers from 1 in selection order: the first `canary` nodes to upgrade form batch 1
    (none with canary 0), then `batch_size` at a time. Skipped nodes are in no batch (0)."""
    numbers = _batch_numbers(canary=canary, batch_size=batch_size)
    batches = 0
    out = []
    for node in nodes:
        if node.status == RolloutNodeStatus.PENDING:
            batches = next(numbers)
            node = PlannedNode(**{**vars(node), "batch": batches})
        out.append(node)
    return out, batches


def _batch_numbers(*, canary: int, batch_size: int) -> Iterator[int]:
    yield from [1] * canary
    batch = 2 if canary else 1
    while True:
        yield from [batch] * batch_size
        batch += 1
