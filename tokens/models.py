"""User API tokens (§5): only a SHA-256 digest of each key is stored; the key itself is shown
once, when the token is made (tokens.services.token_create)."""

import uuid

from django.conf import settings
from django.db import models


class ApiToken(models.Model):
    """One key a user's automation authenticates with (`Authorization: Token|Bearer <key>`)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True, help_text="What the token is for (e.g. ci-deploy).")
    digest = models.CharField(max_length=64, unique=True, editable=False, help_text="SHA-256 of the key, hex.")
    prefix = models.CharField(
        max_length=12, editable=False, help_text="The key's first characters, to recognise it; not a secret."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="Empty: never expires (minted with --no-expiry)."
    )

    class Meta:
        verbose_name = "API token"
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.prefix}… ({self.name or 'unnamed'})"
