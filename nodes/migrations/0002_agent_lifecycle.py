"""§9: node states, the command's status and timestamps, the agent outcomes in NodeLog.

Existing data: every Command written before this migration closes as `succeeded` (what it
asked is taken as done, so agents never replay old work) and `upgrading` nodes become
`running` (docs/decisions.md, release notes). Runs before the one-open-command index exists.
"""

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import F


def close_existing_work(apps, schema_editor):
    Command = apps.get_model("nodes", "Command")
    Node = apps.get_model("nodes", "Node")
    Command.objects.update(status="succeeded", finished_at=F("created_at"))
    Node.objects.filter(state="upgrading").update(state="running")


class Migration(migrations.Migration):

    dependencies = [
        ('hosts', '0003_host_agent'),
        ('nodes', '0002_nodelog_force_requested'),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='command',
            options={'ordering': ['-id'], 'permissions': [('cancel_command', 'Can cancel an open agent command')]},
        ),
        migrations.AddField(
            model_name='command',
            name='acked_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='command',
            name='attempts',
            field=models.IntegerField(db_default=0, default=0),
        ),
        migrations.AddField(
            model_name='command',
            name='finished_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='command',
            name='message',
            field=models.TextField(blank=True, db_default='', default=''),
        ),
        migrations.AddField(
            model_name='command',
            name='not_before',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='command',
            name='status',
            field=models.CharField(choices=[('pending', 'Pending'), ('acked', 'Acked'), ('succeeded', 'Succeeded'), ('failed', 'Failed'), ('rolled_back', 'Rolled back'), ('superseded', 'Superseded'), ('cancelled', 'Cancelled')], db_default='pending', default='pending', max_length=20),
        ),
        migrations.AddField(
            model_name='nodelog',
            name='command',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='nodes.command'),
        ),
        migrations.AddField(
            model_name='nodelog',
            name='message',
            field=models.TextField(blank=True, db_default='', default=''),
        ),
        migrations.AlterField(
            model_name='node',
            name='state',
            field=models.CharField(choices=[('creating', 'Creating'), ('running', 'Running'), ('upgrading', 'Upgrading'), ('failed', 'Failed')], default='running', max_length=20),
        ),
        migrations.AlterField(
            model_name='nodelog',
            name='event',
            field=models.CharField(choices=[('created', 'Created'), ('upgrade_started', 'Upgrade started'), ('deleted', 'Deleted'), ('allocation_repaired', 'Allocation repaired'), ('create_succeeded', 'Create succeeded'), ('create_failed', 'Create failed'), ('upgrade_succeeded', 'Upgrade succeeded'), ('upgrade_failed', 'Upgrade failed'), ('upgrade_rolled_back', 'Upgrade rolled back'), ('delete_failed', 'Delete failed'), ('command_cancelled', 'Command cancelled')], max_length=30),
        ),
        migrations.AddConstraint(
            model_name='command',
            constraint=models.CheckConstraint(condition=models.Q(('attempts__gte', 0)), name='command_attempts_non_negative'),
        ),
        migrations.RunPython(close_existing_work, migrations.RunPython.noop, elidable=True),
        migrations.AddIndex(
            model_name='command',
            index=models.Index(condition=models.Q(('status__in', ['pending', 'acked'])), fields=['host', 'id'], name='command_open_by_host'),
        ),
        migrations.AddConstraint(
            model_name='command',
            constraint=models.UniqueConstraint(condition=models.Q(('status__in', ['pending', 'acked'])), fields=('node_id',), name='command_one_open_per_node'),
        ),
    ]
