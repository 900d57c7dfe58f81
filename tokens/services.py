"""Services of user API tokens: make one (its key shown once), revoke one or all of a user's.
A user's tokens are revoked when their password changes or they are deactivated (receiver
below, connected in TokensConfig.ready)."""

import datetime as dt
import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config.errors import NotFound
from config.http.logging import log_event
from tokens import keys
from tokens.models import ApiToken

logger = logging.getLogger(__name__)


def token_create(*, user, name: str = "", expires: bool = True) -> tuple[ApiToken, str]:
    """A new token for `user`, expiring after settings.API_TOKEN_TTL seconds (or never);
    returns it with its key, which is stored nowhere: the caller shows it once. The user's
    expired tokens are deleted on the way."""
    key = keys.new_key()
    now = timezone.now()
    with transaction.atomic():
        ApiToken.objects.filter(user=user, expires_at__lte=now).delete()
        token = ApiToken.objects.create(
            user=user,
            name=name,
            digest=keys.digest(key),
            prefix=keys.display_prefix(key),
            expires_at=now + dt.timedelta(seconds=settings.API_TOKEN_TTL) if expires else None,
        )
    log_event(logger, "api_token_created", user=user.get_username(), token=token.pk, prefix=token.prefix)
    return token, key


def token_revoke(*, user, token_id) -> None:
    """Deletes one of `user`'s tokens; another user's token is `not_found`, as if it did not exist."""
    deleted, _ = ApiToken.objects.filter(user=user, pk=token_id).delete()
    if not deleted:
        raise NotFound(f"No token with id {token_id}.")
    log_event(logger, "api_token_revoked", user=user.get_username(), token=token_id)


def tokens_revoke_all(*, user, reason: str = "owner") -> int:
    """Deletes every token of `user`; returns how many there were."""
    deleted, _ = ApiToken.objects.filter(user=user).delete()
    if deleted:
        log_event(logger, "api_tokens_revoked", user=user.get_username(), count=deleted, reason=reason)
    return deleted


def revoke_on_password_change_or_deactivation(sender, instance, created, **kwargs) -> None:
    """post_save of the user model: a password set (`set_password`, as the admin, the
    password-change views and `changepassword` do) or a deactivation revokes the user's tokens.
    A deactivated user's tokens stop working at once in any case (authentication checks
    `is_active`), even after a bulk `update()` that sends no signal."""
    if created or kwargs.get("raw"):
        return
    if getattr(instance, "_password", None) is not None:
        tokens_revoke_all(user=instance, reason="password_changed")
    elif not instance.is_active:
        tokens_revoke_all(user=instance, reason="deactivated")
