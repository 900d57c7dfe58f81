"""Existing DRF authtoken keys become digests (they keep working until API_TOKEN_TTL after
this migration); DRF's plaintext table is dropped. See tokens/legacy.py and docs/decisions.md."""

from django.db import migrations

from tokens.legacy import import_drf_tokens


class Migration(migrations.Migration):

    dependencies = [("tokens", "0001_initial")]

    operations = [migrations.RunPython(import_drf_tokens, migrations.RunPython.noop, elidable=False)]
