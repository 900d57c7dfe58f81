"""A rollout and its one row per selected node. The rollout's state machine is written once,
here (TRANSITIONS); services change a state only through `nodes.rollouts.services._move`."""

import uuid

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q


class RolloutState(models.TextChoices):
    PLANNED = "planned", "Planned"
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    HALTED = "halted", "Halted"
    COMPLETED = "completed", "Completed"
    ABORTED = "aborted", "Aborted"


#: States in which a rollout holds its nodes (a node is in at most one such rollout).
ACTIVE_STATES = (RolloutState.PLANNED, RolloutState.RUNNING, RolloutState.PAUSED, RolloutState.HALTED)

#: The rollout's state machine (§10), one row per action: the states it may start from and the
#: state it leads to. People start, pause, resume and abort; the advance halts, completes and
#: pauses after the canary. Any other action answers `invalid_state`.
TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "start": ((RolloutState.PLANNED,), RolloutState.RUNNING),
    "pause": ((RolloutState.RUNNING,), RolloutState.PAUSED),
    "resume": ((RolloutState.PAUSED, RolloutState.HALTED), RolloutState.RUNNING),
    "abort": (ACTIVE_STATES, RolloutState.ABORTED),
    "halt": ((RolloutState.RUNNING,), RolloutState.HALTED),
    "complete": ((RolloutState.RUNNING,), RolloutState.COMPLETED),
}


class RolloutNodeStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    UPGRADING = "upgrading", "Upgrading"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    ROLLED_BACK = "rolled_back", "Rolled back"
    REFUSED = "refused", "Refused"
    SKIPPED = "skipped", "Skipped"


#: Row statuses that count against `max_failures`.
FAILURE_STATUSES = (RolloutNodeStatus.FAILED, RolloutNodeStatus.ROLLED_BACK)


class Rollout(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    image = models.ForeignKey("nodes.Image", on_delete=models.PROTECT, related_name="rollouts")
    # The selection as asked (kept for the record; the rows are what runs).
    from_versions = models.JSONField(default=list, blank=True)
    host_ids = models.JSONField(default=list, blank=True)
    node_ids = models.JSONField(default=list, blank=True)
    batch_size = models.PositiveIntegerField(default=25, validators=[MinValueValidator(1)])
    canary = models.PositiveIntegerField(default=1)
    pause_after_canary = models.BooleanField(default=True)
    max_failures = models.PositiveIntegerField(default=1, validators=[MinValueValidator(1)])
    result_timeout_seconds = models.PositiveIntegerField(default=3600, validators=[MinValueValidator(1)])
    state = models.CharField(max_length=20, choices=RolloutState.choices, default=RolloutState.PLANNED)
    batches = models.PositiveIntegerField(default=0)
    current_batch = models.PositiveIntegerField(default=0)
    # The last batch whose end was decided (halted, paused, next): resume moves on from it.
    ended_batch = models.PositiveIntegerField(default=0)
    # Why the rollout stopped where it is (halted: the failures; paused after the canary).
    reason = models.TextField(blank=True)
    # When the advance next looks for rows past their result timeout (at most every half tick).
    tick_due_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The advance's last failed step (a lock timeout, a lost connection, a deadlock beyond the
    # retries): when, what, and how many steps in a row have failed since one succeeded (0: the
    # last step succeeded). The next tick is queued before each step, so a failure stops nothing.
    last_step_failed_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_step_error = models.TextField(blank=True, editable=False)
    step_failures = models.PositiveIntegerField(default=0, editable=False)
    auto = models.BooleanField(default=False, help_text="Created by an image added for auto_upgrade nodes.")
    creator = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["state"], name="rollout_state_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(batch_size__gte=1), name="rollout_batch_size_positive"),
            models.CheckConstraint(condition=Q(max_failures__gte=1), name="rollout_max_failures_positive"),
            models.CheckConstraint(condition=Q(current_batch__lte=models.F("batches")), name="rollout_batch_in_range"),
        ]

    def __str__(self):
        return f"rollout {self.pk} to {self.image_id}"

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_STATES


class RolloutNode(models.Model):
    """One selected node of a rollout: its batch, where it is, and why (a skip, a refusal)."""

    rollout = models.ForeignKey(Rollout, on_delete=models.CASCADE, related_name="nodes")
    # By id and name, not FK: the row outlives a node deleted during the rollout ("deleted").
    node_id = models.UUIDField()
    node_name = models.CharField(max_length=200)
    host_id = models.UUIDField()
    host_name = models.CharField(max_length=200)
    position = models.PositiveIntegerField()  # selection order: host name, then node name
    batch = models.PositiveIntegerField(default=0)  # 0: skipped at planning, in no batch
    status = models.CharField(max_length=20, choices=RolloutNodeStatus.choices, default=RolloutNodeStatus.PENDING)
    reason = models.TextField(blank=True)
    # The plan's allocations (old -> new); the upgrade recomputes them when it runs.
    old_cpu_cores = models.BigIntegerField(default=0)
    old_memory_bytes = models.BigIntegerField(default=0)
    old_disk_bytes = models.BigIntegerField(default=0)
    new_cpu_cores = models.BigIntegerField(default=0)
    new_memory_bytes = models.BigIntegerField(default=0)
    new_disk_bytes = models.BigIntegerField(default=0)
    # The node_upgrade Command this row is waiting on, and when it was issued (result timeout).
    command_id = models.BigIntegerField(null=True, blank=True)
    upgraded_at = models.DateTimeField(null=True, blank=True)
    # When the row moved to a later batch because its node had someone else's open command: it
    # waits for that command at most the rollout's result_timeout_seconds from then (skipped after).
    deferred_at = models.DateTimeField(null=True, blank=True)
    # True while the row holds its node for an active rollout (the partial unique index below).
    holds_node = models.BooleanField(default=True)

    class Meta:
        ordering = ["rollout", "position"]
        indexes = [
            models.Index(fields=["rollout", "batch", "status"], name="rollout_node_batch_idx"),
            models.Index(fields=["command_id"], name="rollout_node_command_idx", condition=Q(command_id__isnull=False)),
            models.Index(fields=["node_id"], name="rollout_node_node_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["node_id"], condition=Q(holds_node=True), name="rollout_node_one_active_rollout"
            ),
            models.UniqueConstraint(fields=["rollout", "node_id"], name="rollout_node_once_per_rollout"),
        ]

    def __str__(self):
        return f"{self.node_name}: {self.status}"
