from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("hosts", "0007_outside_writes"),
    ]

    operations = [
        migrations.AddField(
            model_name="auditrun",
            name="drifted_host_ids",
            field=models.JSONField(blank=True, default=list),
        ),
    ]
