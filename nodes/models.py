"""Images (with their properties), the nodes that run them, and the node history and agent
commands written in the same transaction as every change."""

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

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
        self.clean()
        super().save(*args, **kwargs)

    def clean(self):
        super().clean()
        if self._state.adding:
            return
        stored = Image.objects.filter(pk=self.pk).values("min_cpu_cores", "min_memory_bytes", "min_disk_bytes").first()
        changed = stored and any(getattr(self, field) != value for field, value in stored.items())
        if changed and (count := self.node_total()):
            raise ValidationError(IMAGE_IN_USE.format(image=self, count=count))

    def delete(self, *args, **kwargs):
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
        self._refuse_if_image_in_use()
        super().save(*args, **kwargs)

    def clean(self):
        super().clean()
        self._refuse_if_image_in_use()

    def delete(self, *args, **kwargs):
        self._refuse_if_image_in_use()
        return super().delete(*args, **kwargs)

    def _refuse_if_image_in_use(self):
        if self.image_id and (count := Node.objects.filter(image_id=self.image_id).count()):
            raise ValidationError(IMAGE_IN_USE.format(image=self.image, count=count))


class NodeState(models.TextChoices):
    RUNNING = "running", "Running"
    UPGRADING = "upgrading", "Upgrading"


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
    state = models.CharField(max_length=20, choices=NodeState.choices, default=NodeState.RUNNING)
    # Moved by rollouts made when a newer image of its protocol and major is added (§10).
    auto_upgrade = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        permissions = [("upgrade_node", "Can upgrade a node to another image")]
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
    forced = models.BooleanField(default=False)
    warnings = models.JSONField(default=list, blank=True)
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


class Command(models.Model):
    """Work for a host's agent. For one node, the newest command (highest id) supersedes older ones."""

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="commands")
    node_id = models.UUIDField(db_index=True)
    kind = models.CharField(max_length=20, choices=CommandKind.choices)
    payload = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self):
        return f"{self.kind} {self.node_id}"


from nodes.rollouts.models import Rollout, RolloutNode  # noqa: E402 -- §10's models, registered with this app
