"""The login log: one line for every login that succeeds, fails (wrong password, wrong or
missing one-time code, refused by a lockout: reason `locked_out`), is slowed down
(`login_slowed`, config.staff.login_lockout) or locks a client out, with the username and client
address; the request id comes with every line (config.http.logging). Connected by config.apps."""

import logging

from axes.helpers import get_client_ip_address
from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver
from django_otp.forms import otp_verification_failed

from config.http.logging import log_event

logger = logging.getLogger("nodefleet.logins")


def _client(request) -> str:
    return (get_client_ip_address(request) if request is not None else None) or "-"


@receiver(user_logged_in, dispatch_uid="nodefleet.login_succeeded")
def login_succeeded(sender, request, user, **kwargs):
    log_event(logger, "login_succeeded", username=user.get_username(), staff=user.is_staff, client=_client(request))


@receiver(user_login_failed, dispatch_uid="nodefleet.login_failed")
def login_failed(sender, credentials, request=None, **kwargs):
    # `credentials` comes cleansed of the password by Django; only the username is logged. A
    # refusal by the lockout (config.staff.auth_backends) checked no password: `locked_out`.
    log_event(
        logger,
        "login_failed",
        logging.WARNING,
        username=credentials.get("username", "-"),
        reason="locked_out" if getattr(request, "nf_login_refused", False) else "password",
        client=_client(request),
    )


@receiver(otp_verification_failed, dispatch_uid="nodefleet.login_code_failed")
def login_code_failed(sender, user, **kwargs):
    log_event(logger, "login_failed", logging.WARNING, username=user.get_username(), reason="one-time code")


@receiver(user_locked_out, dispatch_uid="nodefleet.login_locked_out")
def login_locked_out(sender, request, username, ip_address, **kwargs):
    log_event(logger, "login_locked_out", logging.WARNING, username=username or "-", client=ip_address or "-")
