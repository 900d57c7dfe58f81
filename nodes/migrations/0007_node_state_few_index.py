from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("nodes", "0006_name_trigram_no_pending_list"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="node",
            index=models.Index(
                condition=models.Q(("state__in", ["creating", "upgrading", "failed"])),
                fields=["state"],
                name="node_state_few",
            ),
        ),
    ]
