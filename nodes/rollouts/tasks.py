"""Background tasks of rollouts (Django's tasks API, django-tasks-db backend). Thin: each
calls one service with ids and is safe to run twice, or by two workers at once."""

from django_tasks import task

from nodes.rollouts.services import rollout_advance


@task()
def advance_rollout(rollout_id: str) -> str:
    """Moves a running rollout as far as it can now; returns its state."""
    return rollout_advance(rollout_id=rollout_id)
