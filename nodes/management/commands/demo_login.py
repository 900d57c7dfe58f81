"""manage.py demo_login: (re)creates the quick start's admin login and prints it."""

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Creates or resets the superuser 'admin' with a fresh random password and prints the login."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")

    def handle(self, *args, username: str, **options):
        password = secrets.token_urlsafe(12)
        user, _ = get_user_model().objects.get_or_create(username=username)
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        self.stdout.write(
            f"\n  Admin login: http://127.0.0.1:8000/admin/\n  username: {username}\n  password: {password}\n"
        )
