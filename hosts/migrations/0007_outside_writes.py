"""Writes from outside, attributed (SPEC §13): hosts.OutsideWrite and, on PostgreSQL, the trigger
function and the row triggers on hosts_host and nodes_node that fill it (hosts.outside).

The triggers track the columns of hosts.outside.HOST_COLUMNS / NODE_COLUMNS the tables have
when this runs (§1's; §11's too if its migration ran first); columns added by later migrations
are taken in by `migrate`'s post_migrate step (hosts.outside.reinstall_if_needed), with no
migration of their own."""

from django.db import migrations, models

from hosts.outside import install_present, uninstall_triggers


def install(apps, schema_editor):
    install_present(schema_editor)


def uninstall(apps, schema_editor):
    uninstall_triggers(schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("hosts", "0006_capacity_model"),
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
