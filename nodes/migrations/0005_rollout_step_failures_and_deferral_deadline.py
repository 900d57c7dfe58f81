"""Issue 19: a rollout's failed steps are recorded on it (when, what, how many in a row), and a
row deferred behind someone else's open command gets a deadline (`deferred_at`). Rows deferred
before this migration (pending, with the deferral's reason) start their deadline now."""

from django.db import migrations, models

DEFERRED_NOW = """
UPDATE nodes_rolloutnode SET deferred_at = CURRENT_TIMESTAMP
WHERE status = 'pending' AND reason LIKE 'command % was open when batch % started; moved to batch %'
"""


class Migration(migrations.Migration):
    dependencies = [("nodes", "0004_rollouts")]

    operations = [
        migrations.AddField(
            model_name="rollout",
            name="last_step_error",
            field=models.TextField(blank=True, editable=False),
        ),
        migrations.AddField(
            model_name="rollout",
            name="last_step_failed_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="rollout",
            name="step_failures",
            field=models.PositiveIntegerField(default=0, editable=False),
        ),
        migrations.AddField(
            model_name="rolloutnode",
            name="deferred_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunSQL(DEFERRED_NOW, migrations.RunSQL.noop),
    ]
