"""Reads of API tokens. `token_for_key` is on every token-authenticated request: the token, its
user and the user's permissions come back in ONE statement (issue 12's budget)."""

from django.contrib.auth.models import Permission
from django.db import connection
from django.db.models import OuterRef, Q, QuerySet, Value
from django.db.models.functions import Concat
from django.utils import timezone

from tokens import keys
from tokens.models import ApiToken


def _permission_labels():
    """`app_label.codename` of every permission the token's user holds, directly or by group."""
    return (
        Permission.objects.filter(Q(user=OuterRef("user_id")) | Q(group__user=OuterRef("user_id")))
        .annotate(label=Concat("content_type__app_label", Value("."), "codename"))
        .values("label")
    )


def token_for_key(key: str) -> ApiToken | None:
    """The token whose digest matches `key`, with its user; None if there is none.

    On PostgreSQL the user's permissions come in the same statement (an ARRAY subquery) and
    are put where Django's ModelBackend keeps them for the request (`user._perm_cache`), so
    `has_perm` costs nothing more. The permissions are read on every request, never cached
    between requests: a revoked token or a removed permission counts from the next request.
    (On SQLite, the quick start, has_perm reads them as usual: two more statements.)"""
    tokens = ApiToken.objects.select_related("user").filter(digest=keys.digest(key))
    postgres = connection.vendor == "postgresql"
    if postgres:
        from django.contrib.postgres.expressions import ArraySubquery

        tokens = tokens.annotate(permission_labels=ArraySubquery(_permission_labels()))
    token = next(iter(tokens[:1]), None)
    if token is not None and postgres:
        token.user._perm_cache = set(token.permission_labels)
    return token


def tokens_of(*, user) -> QuerySet[ApiToken]:
    """A user's tokens that still work (unexpired), newest first."""
    return ApiToken.objects.filter(user=user).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()))
