"""Carrying DRF authtoken keys over to digests (migration 0002_import_drf_tokens): each
existing key keeps working, stored only as its SHA-256, and expires API_TOKEN_TTL after the
migration; then DRF's table, which held the keys in plaintext, is dropped."""

import datetime as dt
import uuid

from django.conf import settings
from django.utils import timezone

from tokens import keys

LEGACY_TABLE = "authtoken_token"


def import_drf_tokens(apps, schema_editor) -> None:
    connection = schema_editor.connection
    if LEGACY_TABLE not in connection.introspection.table_names():
        return
    ApiToken = apps.get_model("tokens", "ApiToken")
    expires_at = timezone.now() + dt.timedelta(seconds=settings.API_TOKEN_TTL)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT key, user_id, created FROM {connection.ops.quote_name(LEGACY_TABLE)}")
        rows = cursor.fetchall()
    ApiToken.objects.using(connection.alias).bulk_create(
        ApiToken(
            id=uuid.uuid4(),
            user_id=user_id,
            name="carried over from DRF authtoken",
            digest=keys.digest(key),
            prefix=keys.display_prefix(key),
            expires_at=expires_at,
        )
        for key, user_id, _created in rows
    )
    schema_editor.execute(f"DROP TABLE {connection.ops.quote_name(LEGACY_TABLE)}")
