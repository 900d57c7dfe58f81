"""manage.py api_token USERNAME [--no-expiry] [--name NAME]: mints a user API token and prints
its key once, alone on the last line of stdout (the operator's way to give automation a token).

Exit 0 on success, 1 for an unknown or inactive user, 2 on a usage error."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from tokens.services import token_create


class Command(BaseCommand):
    help = "Mints an API token for a user and prints its key once (it is stored only as a digest)."

    def add_arguments(self, parser):
        parser.add_argument("username", metavar="USERNAME")
        parser.add_argument("--no-expiry", action="store_true", help="never expires (default: API_TOKEN_TTL)")
        parser.add_argument("--name", default="", help="what the token is for, shown in token lists")

    def handle(self, *args, username: str, no_expiry: bool, name: str, **options):
        User = get_user_model()
        user = User._default_manager.filter(**{User.USERNAME_FIELD: username}).first()
        if user is None:
            raise CommandError(f"No user {username!r}.", returncode=1)
        if not user.is_active:
            raise CommandError(f"User {username!r} is inactive; activate them first.", returncode=1)
        if len(name) > 100:
            raise CommandError("--name: at most 100 characters.", returncode=2)
        token, key = token_create(user=user, name=name or "api_token command", expires=not no_expiry)
        expiry = "never expires" if token.expires_at is None else f"expires {token.expires_at:%Y-%m-%d %H:%M} UTC"
        self.stderr.write(
            f"Token {token.prefix}… for {username} ({expiry}; TTL {settings.API_TOKEN_TTL} s). "
            "It is shown only now; revoke it at /api/v1/auth/tokens/ or in the admin."
        )
        self.stdout.write(key)
