"""Hosts: capacity and the allocation counters that must equal the sum of their nodes."""

import uuid
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import connection, models, transaction
from django.db.models import Q

from config.units import BIGINT_MAX, RESOURCES
from hosts.capacity import ALLOCATABLE, RATIO, RESERVED, allocatable_expression

_amount = [MinValueValidator(0), MaxValueValidator(BIGINT_MAX)]

#: host counter field -> the resource it sums (node_count counts nodes).
COUNTER_OF_RESOURCE = {
    "cpu_cores": "node_cpu_cores",
    "memory_bytes": "node_memory_bytes",
    "disk_bytes": "node_disk_bytes",
}
COUNTER_FIELDS = ("node_count", *COUNTER_OF_RESOURCE.values())


class Source(models.TextChoices):
    API = "api", "API"
    ADMIN = "admin", "Admin"
    CLI = "cli", "Command line"
    ROLLOUT = "rollout", "Rollout"


class Scheduling(models.TextChoices):
    """Whether placement may choose a host (§11)."""

    AUTOMATIC = "automatic", "automatic (placement may choose it)"
    MANUAL = "manual", "manual (only nodes that name it)"
    DRAINING = "draining", "draining (no new nodes)"


#: The largest allocation ratio (4 decimal places, above 0).
RATIO_MAX = Decimal(1000)
_ratio = [MinValueValidator(Decimal("0.0001")), MaxValueValidator(RATIO_MAX)]
#: The host's fields a person (admin, API) may set: name, capacity, reserve, ratios, slots, placement.
HOST_INPUT_FIELDS = (
    "name",
    *RESOURCES,
    *RESERVED.values(),
    *RATIO.values(),
    "max_nodes",
    "region",
    "scheduling",
)
#: The fields whose change moves what a host can take (changed under its row lock).
CAPACITY_MODEL_FIELDS = (*RESOURCES, *RESERVED.values(), *RATIO.values(), "max_nodes")


class Host(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200, unique=True)

    cpu_cores = models.BigIntegerField(validators=_amount)
    memory_bytes = models.BigIntegerField(validators=_amount)
    disk_bytes = models.BigIntegerField(validators=_amount)

    # The capacity model (§11): allocatable = floor((X - reserved_X) * ratio), see hosts.capacity.
    reserved_cpu_cores = models.BigIntegerField(default=0, validators=_amount)
    reserved_memory_bytes = models.BigIntegerField(default=0, validators=_amount)
    reserved_disk_bytes = models.BigIntegerField(default=0, validators=_amount)
    cpu_allocation_ratio = models.DecimalField(max_digits=8, decimal_places=4, default=Decimal(1), validators=_ratio)
    memory_allocation_ratio = models.DecimalField(max_digits=8, decimal_places=4, default=Decimal(1), validators=_ratio)
    disk_allocation_ratio = models.DecimalField(max_digits=8, decimal_places=4, default=Decimal(1), validators=_ratio)
    allocatable_cpu_cores = models.GeneratedField(
        expression=allocatable_expression("cpu_cores"), output_field=models.BigIntegerField(), db_persist=True
    )
    allocatable_memory_bytes = models.GeneratedField(
        expression=allocatable_expression("memory_bytes"), output_field=models.BigIntegerField(), db_persist=True
    )
    allocatable_disk_bytes = models.GeneratedField(
        expression=allocatable_expression("disk_bytes"), output_field=models.BigIntegerField(), db_persist=True
    )
    max_nodes = models.BigIntegerField(
        null=True, blank=True, validators=_amount, help_text="Node slots: empty means no limit."
    )
    region = models.CharField(max_length=100, default="", blank=True)
    scheduling = models.CharField(max_length=10, choices=Scheduling.choices, default=Scheduling.AUTOMATIC)

    # Allocation counters: written only by the services in hosts.counters / hosts.repair.
    node_count = models.BigIntegerField(default=0, editable=False)
    node_cpu_cores = models.BigIntegerField(default=0, editable=False)
    node_memory_bytes = models.BigIntegerField(default=0, editable=False)
    node_disk_bytes = models.BigIntegerField(default=0, editable=False)

    # The host's agent (§9): the SHA-256 (hex) of its one token — the token itself is shown once
    # and never stored; a new token replaces the digest, which revokes the old one.
    agent_token_digest = models.CharField(max_length=64, unique=True, null=True, blank=True, editable=False)
    agent_token_created_at = models.DateTimeField(null=True, blank=True, editable=False)
    # When the agent last polled (written at most once a minute).
    agent_seen_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["name"]
        permissions = [
            ("overcommit_host", "Can place nodes past a host's capacity (force)"),
            ("repair_counters", "Can repair a host's allocation counters"),
        ]
        constraints = [
            *(
                models.CheckConstraint(condition=Q(**{f"{field}__gte": 0}), name=f"host_{field}_non_negative")
                for field in ("cpu_cores", "memory_bytes", "disk_bytes", *COUNTER_FIELDS, *RESERVED.values())
            ),
            *(
                models.CheckConstraint(
                    condition=Q(**{f"{field}__gt": 0, f"{field}__lte": RATIO_MAX}), name=f"host_{field}_range"
                )
                for field in RATIO.values()
            ),
            models.CheckConstraint(
                condition=Q(max_nodes__isnull=True) | Q(max_nodes__gte=0), name="host_max_nodes_non_negative"
            ),
            models.CheckConstraint(condition=Q(scheduling__in=Scheduling.values), name="host_scheduling_valid"),
        ]
        indexes = [
            # Placement's candidates: automatic hosts, of one region or any (a partial index).
            models.Index(
                fields=["region", "name"], condition=Q(scheduling=Scheduling.AUTOMATIC), name="host_automatic_region"
            ),
        ]

    def __str__(self):
        return self.name

    def allocatable(self) -> dict[str, int]:
        return {name: getattr(self, column) for name, column in ALLOCATABLE.items()}

    def counters(self) -> dict[str, int]:
        return {field: getattr(self, field) for field in COUNTER_FIELDS}

    def delete(self, *args, **kwargs):
        """Refuses a host that holds nodes. The row is locked FOR UPDATE before they are counted:
        every node writer holds the host's lock, so a node being placed is counted after it
        commits, rather than failing this delete's foreign-key check at COMMIT."""
        with transaction.atomic():
            if connection.features.has_select_for_update:
                list(Host.objects.select_for_update().filter(pk=self.pk).values_list("pk"))
            if count := self.nodes.count():
                raise ValidationError(f"Host {self} holds {count} node(s) and cannot be deleted; delete them first.")
            return super().delete(*args, **kwargs)


class CounterRepair(models.Model):
    """One repair of one host's counters: what they held and what they were set to."""

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="repairs")
    old_node_count = models.BigIntegerField()
    old_node_cpu_cores = models.BigIntegerField()
    old_node_memory_bytes = models.BigIntegerField()
    old_node_disk_bytes = models.BigIntegerField()
    new_node_count = models.BigIntegerField()
    new_node_cpu_cores = models.BigIntegerField()
    new_node_memory_bytes = models.BigIntegerField()
    new_node_disk_bytes = models.BigIntegerField()
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    source = models.CharField(max_length=10, choices=Source.choices)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"repair of {self.host_id} at {self.created_at:%Y-%m-%d %H:%M:%S}"


#: How many drifted host ids an AuditRun keeps (§12).
DRIFTED_HOST_IDS_MAX = 1000


class AuditRun(models.Model):
    """The summary of one audit_resources run: what /metrics reports as the last audit's drift."""

    hosts_checked = models.BigIntegerField()
    nodes_checked = models.BigIntegerField()
    # {counter: {"hosts": hosts whose counter disagreed, "amount": sum of |recorded - expected|}}
    drift = models.JSONField(default=dict)
    node_findings = models.BigIntegerField(default=0)
    # The ids (as strings) of the hosts whose counters disagreed, at most DRIFTED_HOST_IDS_MAX:
    # the fleet page marks their tiles without running the fleet-wide audit (§12).
    drifted_host_ids = models.JSONField(default=list, blank=True)
    source = models.CharField(max_length=10, choices=Source.choices)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"audit at {self.created_at:%Y-%m-%d %H:%M:%S}"

    @property
    def host_findings(self) -> int:
        """The audit's host findings (one per host and counter in disagreement), as its summary counts them."""
        return sum(entry.get("hosts", 0) for entry in self.drift.values())


class OutsideWrite(models.Model):
    """A write to a host's counters or capacity, or to a node's host or allocation, made by a
    connection that is not Nodefleet's (§13): recorded by the database's own trigger (hosts.outside),
    in the writer's transaction. Append-only for the application: nothing of Nodefleet writes
    here but `manage.py outside_writes --prune-before`."""

    table = models.CharField(max_length=63)
    operation = models.CharField(max_length=6)  # INSERT, UPDATE or DELETE
    row_id = models.UUIDField(db_index=True)
    # The host the row concerns (a node's host after the write, before it for a delete) and, for
    # a node moved between hosts, the host it left. Not foreign keys: the record outlives them.
    host_id = models.UUIDField(null=True, db_index=True)
    from_host_id = models.UUIDField(null=True, db_index=True)
    # {column: {"old": value, "new": value}} for each tracked column the write changed (old is
    # null for an INSERT, new for a DELETE).
    changes = models.JSONField(default=dict)
    session_user = models.CharField(max_length=63)
    application_name = models.CharField(max_length=64, blank=True)
    client_addr = models.GenericIPAddressField(null=True)  # NULL: a local (Unix socket) connection
    transaction_id = models.BigIntegerField()
    created_at = models.DateTimeField(db_index=True)  # the database's clock at the write

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "outside write"

    def __str__(self):
        return f"{self.operation} {self.table} {self.row_id} by {self.session_user}"
