"""Writes from outside, attributed (SPEC §13): hosts.OutsideWrite and, on PostgreSQL, the trigger
function and the row triggers on hosts_host and nodes_node that fill it (hosts.outside).

It installs the columns that exist at this point (§1's); columns of hosts.outside.HOST_COLUMNS
added by later migrations (§11's capacity model) are taken into the triggers by `migrate`'s
post_migrate step (hosts.outside.reinstall_if_needed), with no migration of their own."""

from django.db import migrations, models

from hosts.outside import install_triggers, uninstall_triggers

#: hosts_host: the capacity of §1 and the four counters.
HOST_COLUMNS = [
    "cpu_cores",
    "memory_bytes",
    "disk_bytes",
    "node_count",
    "node_cpu_cores",
    "node_memory_bytes",
    "node_disk_bytes",
]
#: nodes_node: its host and its allocation.
NODE_COLUMNS = ["host_id", "cpu_cores", "memory_bytes", "disk_bytes"]


def install(apps, schema_editor):
    install_triggers(schema_editor, host_columns=HOST_COLUMNS, node_columns=NODE_COLUMNS)


def uninstall(apps, schema_editor):
    uninstall_triggers(schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("hosts", "0005_source_rollout"),
        ("nodes", "0001_initial"),  # the node table the trigger watches
    ]

    operations = [
        migrations.CreateModel(
            name="OutsideWrite",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("table", models.CharField(max_length=63)),
                ("operation", models.CharField(max_length=6)),
                ("row_id", models.UUIDField(db_index=True)),
                ("host_id", models.UUIDField(db_index=True, null=True)),
                ("from_host_id", models.UUIDField(db_index=True, null=True)),
                ("changes", models.JSONField(default=dict)),
                ("session_user", models.CharField(max_length=63)),
                ("application_name", models.CharField(blank=True, max_length=64)),
                ("client_addr", models.GenericIPAddressField(null=True)),
                ("transaction_id", models.BigIntegerField()),
                ("created_at", models.DateTimeField(db_index=True)),
            ],
            options={"verbose_name": "outside write", "ordering": ["-created_at", "-id"]},
        ),
        migrations.RunPython(install, uninstall, elidable=False),
    ]
