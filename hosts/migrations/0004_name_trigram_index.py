"""A trigram index for the admin's search by host name (`?q=`, Django's `icontains`), on
PostgreSQL only: pg_trgm (django.contrib.postgres) makes `UPPER(name) LIKE UPPER('%term%')` an
index lookup instead of a scan. The quick start's SQLite keeps scanning (its fleets are small).

The index is built CONCURRENTLY (writes go on meanwhile), so this migration is not atomic. It is
outside the models' state: a GIN index cannot be declared where SQLite rebuilds tables."""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

from config.search import trigram_index


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("hosts", "0003_host_agent")]

    operations = [TrigramExtension(), trigram_index("hosts_host", "name")]
