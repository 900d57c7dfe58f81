"""Migration tokens.0002: DRF authtoken keys become digests that keep working (until
API_TOKEN_TTL later), and DRF's plaintext table is dropped."""

import datetime as dt

import pytest
from django.apps import apps
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from tests.api.conftest import READ_PERMISSIONS
from tests.factories import UserFactory
from tokens import keys
from tokens.legacy import LEGACY_TABLE, import_drf_tokens
from tokens.models import ApiToken

pytestmark = pytest.mark.django_db

LEGACY_KEY = "0123456789abcdef0123456789abcdef01234567"


def test_drf_keys_are_carried_over_as_digests_and_the_plaintext_table_is_dropped(settings):
    settings.API_TOKEN_TTL = 7 * 24 * 3600
    user = UserFactory(permissions=READ_PERMISSIONS)
    with connection.cursor() as cursor:  # DRF authtoken's table, as a database migrated before holds it
        cursor.execute(
            f"CREATE TABLE {LEGACY_TABLE} (key varchar(40) PRIMARY KEY, created timestamptz NOT NULL, "
            "user_id integer NOT NULL UNIQUE)"
        )
        cursor.execute(f"INSERT INTO {LEGACY_TABLE} VALUES (%s, now(), %s)", [LEGACY_KEY, user.pk])

    with connection.schema_editor() as schema_editor:
        import_drf_tokens(apps, schema_editor)

    assert LEGACY_TABLE not in connection.introspection.table_names()
    token = ApiToken.objects.get(user=user)
    assert token.digest == keys.digest(LEGACY_KEY) and token.prefix == LEGACY_KEY[:8]
    week = timezone.now() + dt.timedelta(days=7)
    assert week - dt.timedelta(minutes=1) < token.expires_at <= week
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {LEGACY_KEY}")
    assert client.get("/api/v1/nodes/").status_code == 200


def test_without_drf_tokens_the_migration_does_nothing():
    with connection.schema_editor() as schema_editor:
        import_drf_tokens(apps, schema_editor)

    assert not ApiToken.objects.exists()
