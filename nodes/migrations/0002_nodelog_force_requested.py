"""NodeLog.force_requested: whether force was asked; `forced` now says whether it was needed.
Entries written before this knew only what was asked (their `forced`): it is copied over."""

from django.db import migrations, models


def copy_forced(apps, schema_editor):
    apps.get_model("nodes", "NodeLog").objects.filter(forced=True).update(force_requested=True)


class Migration(migrations.Migration):
    dependencies = [
        ("nodes", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="nodelog",
            name="force_requested",
            field=models.BooleanField(db_default=False, default=False),
        ),
        migrations.RunPython(copy_forced, migrations.RunPython.noop, elidable=True),
    ]
