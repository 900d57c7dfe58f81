"""The admin site: a login form that asks enrolled staff for their one-time code (django-otp
TOTP) and, with ADMIN_REQUIRE_2FA, admits a superuser only in a session verified by one.

Failed passwords are counted and locked out by django-axes (its backend sits in front of
ModelBackend); a wrong code after a right password is counted by django-otp's own throttle on
the device. config.staff.logins logs every outcome with the request id."""

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django_otp.forms import OTPAuthenticationFormMixin
from django_otp.plugins.otp_totp.models import TOTPDevice

ENROL_HINT = "an operator enrols one with `manage.py totp_enrol USERNAME` (docs/operations.md)"


def totp_device(user) -> TOTPDevice | None:
    """The user's confirmed authenticator (staff enrol at most one: manage.py totp_enrol)."""
    return TOTPDevice.objects.devices_for_user(user, confirmed=True).order_by("pk").first()


class StaffLoginForm(OTPAuthenticationFormMixin, AdminAuthenticationForm):
    """Username, password and, for staff with an authenticator, its current 6-digit code."""

    otp_token = forms.CharField(
        label="Authentication code",
        required=False,
        max_length=16,
        help_text="The 6 digits your authenticator app shows, if you enrolled one.",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )
    otp_error_messages = {
        **OTPAuthenticationFormMixin.otp_error_messages,
        "token_required": "Enter the 6-digit code of your authenticator app.",
        "invalid_token": "That authentication code is wrong or expired.",
    }

    def clean(self):
        cleaned = super().clean()  # username and password (through django-axes), staff only
        user = self.get_user()
        device = totp_device(user)
        if device is not None:
            self._device = device
            self.clean_otp(user)
        elif settings.ADMIN_REQUIRE_2FA and user.is_superuser:
            raise forms.ValidationError(
                f"Superusers need two-factor authentication here and this one has no authenticator: {ENROL_HINT}.",
                code="2fa_required",
            )
        return cleaned

    def _chosen_device(self, user):
        return self._device


class NodefleetAdminSite(admin.AdminSite):
    login_form = StaffLoginForm
    login_template = "admin/nf_login.html"
    site_header = "Nodefleet"
    site_title = "Nodefleet admin"
    index_title = "Fleet administration"
    site_url = "/"  # "View site": the index page (config.http.home)
    # The app list beside every page took a third of a 1,280 px screen from the lists' columns;
    # the breadcrumbs and the home page lead to every list.
    enable_nav_sidebar = False

    def has_permission(self, request):
        if not super().has_permission(request):
            return False
        # is_verified() reads the session (django-otp's middleware): no query for the unverified.
        return not (settings.ADMIN_REQUIRE_2FA and request.user.is_superuser) or request.user.is_verified()
