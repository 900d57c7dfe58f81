"""Images (with their properties), the nodes that run them, and the node history and agent
commands written in the same transaction as every change."""

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import connection, models, transaction
from django.db.models import Q

from config.errors import InvalidState
from config.units import BIGINT_MAX
from hosts.models import Host, Source

_amount = [MinValueValidator(0), MaxValueValidator(BIGINT_MAX)]
_signed = [MinValueValidator(-BIGINT_MAX), MaxValueValidator(BIGINT_MAX)]

IMAGE_IN_USE = "Image {image} is run by {count} node(s): its requirements and properties can no longer change."


class Image(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    protocol = models.CharField(max_length=100)
    version = models.CharField(max_length=100)
    # Deliberately no CHECK constraint here: rows written around validation are refused at
    # upgrade time with `invalid_image_config` (docs/decisions.md).
    min_cpu_cores = models.BigIntegerField(default=0, validators=_amount)
    min_memory_bytes = models.BigIntegerField(default=0, validators=_amount)
    min_disk_bytes = models.BigIntegerField(default=0, validators=_amount)

    class Meta:
        ordering = ["protocol", "version"]
        constraints = [models.UniqueConstraint(fields=["protocol", "version"], name="image_protocol_version_unique")]

    def __str__(self):
        return f"{self.protocol}@{self.version}"

    def save(self, *args, **kwargs):
        with transaction.atomic():
            if not self._state.adding:
                Image.lock_row(self.pk)
            self.clean()
            super().save(*args, **kwargs)

    @staticmethod
    def lock_row(pk) -> None:
        """Locks an image's row FOR UPDATE (inside the caller's transaction) before its nodes are
        counted: node writers share-lock it (nodes.locks.share_image), so this waits for any
        node being placed on the image and then counts it."""
        if connection.features.has_select_for_update:
            list(Image.objects.select_for_update().filter(pk=pk).values_list("pk"))

    def clean(self):
        super().clean()
        if self._state.adding:
            return
        stored = Image.objects.filter(pk=self.pk).values("min_cpu_cores", "min_memory_bytes", "min_disk_bytes").first()
        changed = stored and any(getattr(self, field) != value for field, value in stored.items())
        if changed and (count := self.node_total()):
            raise ValidationError(IMAGE_IN_USE.format(image=self, count=count))

    def delete(self, *args, **kwargs):
        with transaction.atomic():
            Image.lock_row(self.pk)
            if count := self.node_total():
                raise ValidationError(f"Image {self} is run by {count} node(s) and cannot be deleted.")
            return super().delete(*args, **kwargs)

    def node_total(self) -> int:
        return self.nodes.count() if self.pk else 0


class ImageProperty(models.Model):
    """A configurable key of an image; a node whose value differs from the default pays the adds."""

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="properties")
    key = models.CharField(max_length=100)
    default_value = models.CharField(max_length=500, blank=True)
    add_cpu_cores = models.BigIntegerField(null=True, blank=True, validators=_signed)
    add_memory_bytes = models.BigIntegerField(null=True, blank=True, validators=_signed)
    add_disk_bytes = models.BigIntegerField(null=True, blank=True, validators=_signed)

    class Meta:
        ordering = ["key"]
        verbose_name_plural = "image properties"
        constraints = [models.UniqueConstraint(fields=["image", "key"], name="image_property_key_unique")]

    def __str__(self):
        return f"{self.key}={self.default_value}"

    def save(self, *args, **kwargs):
        with transaction.atomic():
            self._refuse_if_image_in_use(lock=True)
            super().save(*args, **kwargs)

    def clean(self):
        super().clean()
        self._refuse_if_image_in_use()

    def delete(self, *args, **kwargs):
        with transaction.atomic():
            self._refuse_if_image_in_use(lock=True)
            return super().delete(*args, **kwargs)

    def _refuse_if_image_in_use(self, *, lock: bool = False):
        if lock and self.image_id:
            Image.lock_row(self.image_id)
        if self.image_id and (count := Node.objects.filter(image_id=self.image_id).count()):
            raise ValidationError(IMAGE_IN_USE.format(image=self.image, count=count))


class NodeState(models.TextChoices):
    CREATING = "creating", "Creating"
    RUNNING = "running", "Running"
    UPGRADING = "upgrading", "Upgrading"
    FAILED = "failed", "Failed"


#: The node's state machine (§9): state -> the states a service may move it to. A node is
#: deleted from any state (its row goes; no transition). `upgrading -> upgrading` is a new
#: upgrade superseding a `pending` one; `creating -> upgrading` does not exist (node_busy).
NODE_TRANSITIONS: dict[str, frozenset[str]] = {
    NodeState.CREATING: frozenset({NodeState.RUNNING, NodeState.FAILED}),
    NodeState.RUNNING: frozenset({NodeState.UPGRADING}),
    NodeState.UPGRADING: frozenset({NodeState.UPGRADING, NodeState.RUNNING, NodeState.FAILED}),
    NodeState.FAILED: frozenset({NodeState.UPGRADING}),
}


#: The states few nodes are in at a time, counted on a partial index; every other node is running.
FEW_STATES = (NodeState.CREATING, NodeState.UPGRADING, NodeState.FAILED)


def node_state_transition(node: "Node", to: str) -> str:
    """Checks that `node` may move from its state to `to` (NODE_TRANSITIONS) and sets it on the
    instance (the caller writes it, in the transaction that holds the node's lock). Raises
    `invalid_state` otherwise."""
    if to not in NODE_TRANSITIONS.get(node.state, ()):
        raise InvalidState(f"Node {node.name} is {node.state}; it cannot become {to}.", state=node.state)
    node.state = to
    return to


class Node(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200, unique=True)
    host = models.ForeignKey(Host, on_delete=models.PROTECT, related_name="nodes")
    image = models.ForeignKey(Image, on_delete=models.PROTECT, related_name="nodes")
    # The node's config: key -> string value. NULL or a non-object is tolerated (old data).
    properties = models.JSONField(default=dict, null=True, blank=True)
    cpu_cores = models.BigIntegerField(default=0, validators=_amount, editable=False)
    memory_bytes = models.BigIntegerField(default=0, validators=_amount, editable=False)
    disk_bytes = models.BigIntegerField(default=0, validators=_amount, editable=False)
    # node_create inserts `creating` (§9); the default serves rows written in bulk (seed_demo,
    # tests) for hosts that already run them.
    state = models.CharField(max_length=20, choices=NodeState.choices, default=NodeState.RUNNING)
    # Moved by rollouts made when a newer image of its protocol and major is added (§10).
    auto_upgrade = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        permissions = [("upgrade_node", "Can upgrade a node to another image")]
        indexes = [
            # The fleet page's counts of the few states (§12): running is Σ node_count minus these.
            models.Index(fields=["state"], condition=Q(state__in=FEW_STATES), name="node_state_few"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(**{f"{field}__gte": 0}), name=f"node_{field}_non_negative")
            for field in ("cpu_cores", "memory_bytes", "disk_bytes")
        ]

    def __str__(self):
        return self.name


class NodeEvent(models.TextChoices):
    CREATED = "created", "Created"
    UPGRADE_STARTED = "upgrade_started", "Upgrade started"
    DELETED = "deleted", "Deleted"
    ALLOCATION_REPAIRED = "allocation_repaired", "Allocation repaired"
    CREATE_SUCCEEDED = "create_succeeded", "Create succeeded"
    CREATE_FAILED = "create_failed", "Create failed"
    UPGRADE_SUCCEEDED = "upgrade_succeeded", "Upgrade succeeded"
    UPGRADE_FAILED = "upgrade_failed", "Upgrade failed"
    UPGRADE_ROLLED_BACK = "upgrade_rolled_back", "Upgrade rolled back"
    DELETE_FAILED = "delete_failed", "Delete failed"
    COMMAND_CANCELLED = "command_cancelled", "Command cancelled"


class NodeLog(models.Model):
    """Append-only history of nodes; kept (by id and name) after its node is deleted."""

    event = models.CharField(max_length=30, choices=NodeEvent.choices)
    node_id = models.UUIDField(db_index=True)
    node_name = models.CharField(max_length=200)
    host = models.ForeignKey(Host, null=True, on_delete=models.SET_NULL, related_name="+")
    host_name = models.CharField(max_length=200)
    old_image = models.ForeignKey(Image, null=True, on_delete=models.SET_NULL, related_name="+")
    new_image = models.ForeignKey(Image, null=True, on_delete=models.SET_NULL, related_name="+")
    old_cpu_cores = models.BigIntegerField(null=True)
    old_memory_bytes = models.BigIntegerField(null=True)
    old_disk_bytes = models.BigIntegerField(null=True)
    new_cpu_cores = models.BigIntegerField(null=True)
    new_memory_bytes = models.BigIntegerField(null=True)
    new_disk_bytes = models.BigIntegerField(null=True)
    # Whether force was needed (something went past capacity); force_requested: whether it was asked.
    forced = models.BooleanField(default=False)
    force_requested = models.BooleanField(default=False, db_default=False)
    warnings = models.JSONField(default=list, blank=True)
    # The agent's message (§9) or the refusal's detail of an outcome that could not apply.
    message = models.TextField(blank=True, default="", db_default="")
    # The command whose outcome this entry records (agent outcomes and cancels), if any.
    command = models.ForeignKey("Command", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    source = models.CharField(max_length=10, choices=Source.choices)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "node log entry"
        verbose_name_plural = "node log"

    def __str__(self):
        return f"{self.node_name}: {self.event}"


class CommandKind(models.TextChoices):
    NODE_CREATE = "node_create", "Create node"
    NODE_UPGRADE = "node_upgrade", "Upgrade node"
    NODE_DELETE = "node_delete", "Delete node"


class CommandStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    ACKED = "acked", "Acked"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    ROLLED_BACK = "rolled_back", "Rolled back"
    SUPERSEDED = "superseded", "Superseded"
    CANCELLED = "cancelled", "Cancelled"


OPEN_STATUSES = frozenset({CommandStatus.PENDING, CommandStatus.ACKED})

#: The command's state machine (§9): status -> the statuses a service may move it to.
#: `acked -> pending` and `pending -> pending` are `retry_later`; closed statuses are final.
COMMAND_TRANSITIONS: dict[str, frozenset[str]] = {
    CommandStatus.PENDING: frozenset(
        {
            CommandStatus.PENDING,
            CommandStatus.ACKED,
            CommandStatus.SUCCEEDED,
            CommandStatus.FAILED,
            CommandStatus.ROLLED_BACK,
            CommandStatus.SUPERSEDED,
            CommandStatus.CANCELLED,
        }
    ),
    CommandStatus.ACKED: frozenset(
        {
            CommandStatus.PENDING,
            CommandStatus.SUCCEEDED,
            CommandStatus.FAILED,
            CommandStatus.ROLLED_BACK,
            CommandStatus.SUPERSEDED,
            CommandStatus.CANCELLED,
        }
    ),
    **{status: frozenset() for status in CommandStatus if status not in OPEN_STATUSES},
}

#: Outcomes an agent may report per kind (`retry_later` is not a status: it returns to pending).
RETRY_LATER = "retry_later"
OUTCOMES_OF_KIND: dict[str, tuple[str, ...]] = {
    CommandKind.NODE_CREATE: (CommandStatus.SUCCEEDED, CommandStatus.FAILED, RETRY_LATER),
    CommandKind.NODE_UPGRADE: (CommandStatus.SUCCEEDED, CommandStatus.FAILED, CommandStatus.ROLLED_BACK, RETRY_LATER),
    CommandKind.NODE_DELETE: (CommandStatus.SUCCEEDED, CommandStatus.FAILED, RETRY_LATER),
}


def command_status_transition(command: "Command", to: str) -> str:
    """Checks that `command` may move from its status to `to` (COMMAND_TRANSITIONS) and sets it
    on the instance (the caller writes it under the node's lock). Raises `invalid_state`."""
    if to not in COMMAND_TRANSITIONS.get(command.status, ()):
        raise InvalidState(f"Command {command.pk} is {command.status}; it cannot become {to}.", state=command.status)
    command.status = to
    return to


class Command(models.Model):
    """Work for a host's agent, written with the change it carries out. At most one command of a
    node is open (`pending` or `acked`) at a time (a partial unique index keeps it, §9)."""

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="commands")
    node_id = models.UUIDField(db_index=True)
    kind = models.CharField(max_length=20, choices=CommandKind.choices)
    # node_create: {image_id, properties}; node_upgrade: {"from": side, "to": side}, a side being
    # {image_id, properties, allocation: {cpu_cores, memory_bytes, disk_bytes}}; node_delete: {}.
    payload = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=20, choices=CommandStatus.choices, default=CommandStatus.PENDING, db_default=CommandStatus.PENDING
    )
    created_at = models.DateTimeField(auto_now_add=True)
    acked_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    attempts = models.IntegerField(default=0, db_default=0)
    # Hidden from the agent's poll until then (set by `retry_later`); NULL: due at once.
    not_before = models.DateTimeField(null=True, blank=True)
    message = models.TextField(blank=True, default="", db_default="")

    class Meta:
        ordering = ["-id"]
        permissions = [("cancel_command", "Can cancel an open agent command")]
        indexes = [
            # The agent's poll: a host's open commands, oldest first.
            models.Index(
                fields=["host", "id"],
                condition=Q(status__in=[CommandStatus.PENDING, CommandStatus.ACKED]),
                name="command_open_by_host",
            ),
        ]
        constraints = [
            # One open command per node (the backstop of §2's rule). PostgreSQL cannot defer a
            # partial unique index: a writer closes the old command before it opens the new one.
            models.UniqueConstraint(
                fields=["node_id"],
                condition=Q(status__in=[CommandStatus.PENDING, CommandStatus.ACKED]),
                name="command_one_open_per_node",
            ),
            models.CheckConstraint(condition=Q(attempts__gte=0), name="command_attempts_non_negative"),
        ]

    def __str__(self):
        return f"{self.kind} {self.node_id}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES
