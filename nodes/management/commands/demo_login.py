"""manage.py demo_login: (re)creates the quick start's admin login and prints it.

A development convenience only: it refuses unless DEBUG is on (or the operator passes
--i-know-this-is-not-production), and it only ever resets a user it made itself, marked by the
reserved address DEMO_EMAIL: an existing real user of the same name is left untouched.

With DEMO_LOGIN_PASSWORD set (the quick start's .env.quickstart holds one), the login keeps that
password across runs: a user who already has it is not saved again, so the API tokens minted for
it live on (a password change revokes a user's tokens). Without it, every run sets a fresh one."""

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

#: Marks the users this command made (`.invalid` is reserved: no real mailbox has it).
DEMO_EMAIL = "demo-login@nodefleet.invalid"
UNSAFE_FLAG = "--i-know-this-is-not-production"
KEPT_IN = ".env.quickstart"


class Command(BaseCommand):
    help = (
        "Creates or resets the demo superuser (default 'admin') and prints the login: the password DEMO_LOGIN_PASSWORD "
        "(make run keeps one in .env.quickstart), else a fresh random one. "
        f"Only under DEBUG (or with {UNSAFE_FLAG}); never touches a user it did not create. "
        "Exit 0 done, 1 refused, 2 usage."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument(
            "--addr",
            default="127.0.0.1:8000",
            help="The server's address, for the printed admin URL (make run's RUN_ADDR).",
        )
        parser.add_argument(
            UNSAFE_FLAG,
            dest="not_production",
            action="store_true",
            help="Run although DEBUG is off (a staging copy, a demo server).",
        )

    def handle(self, *args, username: str, addr: str, not_production: bool, **options):
        if not (settings.DEBUG or not_production):
            raise CommandError(
                f"demo_login makes a superuser with a printed password: it runs only with DEBUG on "
                f"(or with {UNSAFE_FLAG}). Use `manage.py createsuperuser` for a real login.",
                returncode=1,
            )
        password = settings.DEMO_LOGIN_PASSWORD or secrets.token_urlsafe(12)
        User = get_user_model()
        with transaction.atomic():
            user = User.objects.select_for_update().filter(username=username).first()
            if user is None:
                user = User(username=username, email=DEMO_EMAIL)
            elif user.email != DEMO_EMAIL:
                raise CommandError(
                    f"User '{username}' exists and was not made by demo_login: left untouched. "
                    "Pick another --username, or reset that user's password with `manage.py changepassword`.",
                    returncode=1,
                )
            # A new password revokes the user's API tokens: it is set only when it changes.
            changed = user.pk is None or not (user.is_staff and user.is_superuser and user.is_active)
            if user.pk is None or not user.check_password(password):
                user.set_password(password)
                changed = True
            if changed:
                user.is_staff = user.is_superuser = user.is_active = True
                user.save()
        self.stdout.write(
            f"\n  Admin login: http://{addr}/admin/\n  username: {username}\n  password: {password}\n"
            + (f"  (kept across runs: DEMO_LOGIN_PASSWORD in {KEPT_IN})\n" if settings.DEMO_LOGIN_PASSWORD else "")
        )
