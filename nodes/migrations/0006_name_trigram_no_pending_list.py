"""The node name's trigram index without GIN's pending list (config.db.search): a search at
1,000,000 nodes read up to 4 MB of pending entries besides the index (docs/performance.md)."""

from django.db import migrations

from config.db.search import trigram_index_without_pending_list


class Migration(migrations.Migration):
    dependencies = [("nodes", "0005_rollout_step_failures_and_deferral_deadline")]

    operations = [trigram_index_without_pending_list("nodes_node", "name")]
