"""Reads of API tokens. `token_for_key` is on every token-authenticated request: the token, its
user and the user's permissions come back in ONE statement (issue 12's budget)."""

import functools

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.db.models import Q, QuerySet
from django.utils import timezone

from config.db.prepared import prepared_cursor
from tokens import keys
from tokens.models import ApiToken


@functools.cache
def _lookup_sql() -> str:
    """PostgreSQL: the token, its user and `ARRAY[app_label.codename, ...]` of the user's own and
    group permissions, by indexed lookups (each m2m table has a unique index led by its owner).
    Built once per process from the models' metadata, as config/db/statements.py does for writes:
    the ORM would compile this statement anew on every request (about 5 ms measured)."""
    q = connection.ops.quote_name
    User = get_user_model()
    user_permissions = User.user_permissions.through._meta
    user_groups = User.groups.through._meta
    group_permissions = Group.permissions.through._meta
    content_type = Permission._meta.get_field("content_type").related_model._meta

    def column(meta, name):
        return q(meta.get_field(name).column)

    columns = [f"t.{q(f.column)}" for f in ApiToken._meta.concrete_fields]
    columns += [f"u.{q(f.column)}" for f in User._meta.concrete_fields]
    user_id = f"t.{column(ApiToken._meta, 'user')}"
    held = (
        f"SELECT {column(user_permissions, 'permission')} FROM {q(user_permissions.db_table)} "
        f"WHERE {column(user_permissions, 'user')} = {user_id} "
        f"UNION ALL SELECT gp.{column(group_permissions, 'permission')} "
        f"FROM {q(user_groups.db_table)} ug JOIN {q(group_permissions.db_table)} gp "
        f"ON gp.{column(group_permissions, 'group')} = ug.{column(user_groups, 'group')} "
        f"WHERE ug.{column(user_groups, 'user')} = {user_id}"
    )
    labels = (
        f"ARRAY(SELECT ct.{column(content_type, 'app_label')} || '.' || p.{column(Permission._meta, 'codename')} "
        f"FROM {q(Permission._meta.db_table)} p JOIN {q(content_type.db_table)} ct "
        f"ON ct.{q(content_type.pk.column)} = p.{column(Permission._meta, 'content_type')} "
        f"WHERE p.{q(Permission._meta.pk.column)} IN ({held}))"
    )
    return (
        f"SELECT {', '.join(columns)}, {labels} FROM {q(ApiToken._meta.db_table)} t "
        f"JOIN {q(User._meta.db_table)} u ON u.{q(User._meta.pk.column)} = {user_id} "
        f"WHERE t.{column(ApiToken._meta, 'digest')} = %s"
    )


def token_for_key(key: str) -> ApiToken | None:
    """The token whose digest matches `key`, with its user; None if there is none.

    On PostgreSQL the user's permissions come in the same statement and are put where Django's
    ModelBackend keeps them for the request (`user._perm_cache`), so `has_perm` costs nothing
    more. Permissions are read on every request, never cached between requests: a revoked
    token or a removed permission counts from the next request. (On SQLite, the quick start,
    has_perm reads them as usual: two more statements.)"""
    digest = keys.digest(key)
    if connection.vendor != "postgresql":
        return ApiToken.objects.select_related("user").filter(digest=digest).first()
    with prepared_cursor() as cursor:
        cursor.execute(_lookup_sql(), [digest])
        row = cursor.fetchone()
    if row is None:
        return None
    token_fields, user_fields = ApiToken._meta.concrete_fields, get_user_model()._meta.concrete_fields
    token = ApiToken.from_db(connection.alias, [f.attname for f in token_fields], row[: len(token_fields)])
    user = get_user_model().from_db(connection.alias, [f.attname for f in user_fields], row[len(token_fields) : -1])
    user._perm_cache = set(row[-1])
    token.user = user
    return token


def tokens_of(*, user) -> QuerySet[ApiToken]:
    """A user's tokens that still work (unexpired), newest first."""
    return ApiToken.objects.filter(user=user).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()))
