"""A trigram index for the admin's search by node name (`?q=`), on PostgreSQL only: see
hosts/migrations/0004_name_trigram_index.py, which creates the pg_trgm extension."""

from django.db import migrations

from config.search import trigram_index


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("hosts", "0004_name_trigram_index"), ("nodes", "0002_agent_lifecycle")]

    operations = [trigram_index("nodes_node", "name")]
