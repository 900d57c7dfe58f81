"""manage.py totp_enrol USERNAME: gives a staff user an authenticator (TOTP, django-otp) and
prints its secret once: a QR code to scan on a terminal, and the otpauth:// URL and key.

From the next login on, the admin asks that user for the app's 6-digit code (config.staff.admin_site)."""

import sys
from base64 import b32encode

import qrcode
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

DEVICE_NAME = "authenticator"


class Command(BaseCommand):
    help = (
        "Enrols USERNAME's authenticator app (TOTP) and prints its secret once. "
        "Exit 0 enrolled, 1 unknown/inactive/not staff or already enrolled (see --replace), 2 usage."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--replace", action="store_true", help="Replace an enrolled authenticator (a lost phone).")
        parser.add_argument("--remove", action="store_true", help="Remove the user's authenticator, enrol none.")

    def handle(self, *args, username: str, replace: bool, remove: bool, **options):
        if replace and remove:
            raise CommandError("--replace and --remove exclude each other.", returncode=2)
        user = get_user_model().objects.filter(username=username, is_active=True, is_staff=True).first()
        if user is None:
            raise CommandError(f"No active staff user '{username}'.", returncode=1)
        with transaction.atomic():
            enrolled = TOTPDevice.objects.filter(user=user)
            if remove:
                removed, _ = enrolled.delete()
                self.stdout.write(f"Removed {removed} authenticator(s) of {username}.")
                return
            if enrolled.exists() and not replace:
                raise CommandError(
                    f"{username} already has an authenticator; --replace makes a new one (the old stops working).",
                    returncode=1,
                )
            enrolled.delete()
            device = TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=True)
        self.stdout.write(f"Authenticator enrolled for {username}. Scan this QR code with the app, or type the key.")
        if self.stdout.isatty():  # a QR code is only of use on a screen
            code = qrcode.QRCode(border=1)
            code.add_data(device.config_url)
            code.print_ascii(out=sys.stdout, invert=True)
        self.stdout.write(f"  key: {b32encode(device.bin_key).decode()}\n  url: {device.config_url}")
        self.stdout.write("Shown once: the admin never shows it. The next admin login asks for the app's code.")
