"""Admin logins: django-axes locks out repeated failures of a username from one client
address, and (past a looser limit) an address for every username; a username failing from
many addresses is slowed down, never locked (config.staff.login_lockout). Operators unlock with
axes' commands, staff with an authenticator give its code (TOTP), and ADMIN_REQUIRE_2FA keeps
superusers without one out. Every outcome is logged with the request id."""

import io
import json
import logging

import pytest
from axes.models import AccessAttempt, AccessFailureLog
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from config.http.logging import JsonFormatter, RequestIdFilter
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "pw-for-tests"  # UserFactory's
LOGIN = reverse("admin:login")
INDEX = reverse("admin:index")


@pytest.fixture
def login_log():
    """The login log's records as JSON lines (as LOG_FORMAT=json writes them)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("nodefleet.logins")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logger.removeHandler(handler)


def browser(address: str = "127.0.0.1") -> Client:
    """A client that enforces CSRF like a browser, from the given address, with the login page's token."""
    client = Client(enforce_csrf_checks=True, REMOTE_ADDR=address)
    client.get(LOGIN)
    return client


def log_in(client: Client, username: str, password: str = PASSWORD, code: str = "", **headers):
    data = {"username": username, "password": password, "otp_token": code, "next": INDEX}
    data["csrfmiddlewaretoken"] = client.cookies["csrftoken"].value
    return client.post(LOGIN, data, **headers)


def logged_in(client: Client) -> bool:
    return client.get(INDEX).status_code == 200


def enrol(user) -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name="authenticator", confirmed=True)


def code_of(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


# ---------------------------------------------------------------------------------------------
# Lockout


def test_the_right_password_is_refused_after_five_wrong_ones(settings):
    UserFactory(username="ops", is_staff=True)
    client = browser()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert log_in(client, "ops", "wrong").status_code == 200  # the form again, with its error
    locked = log_in(client, "ops", "wrong")
    assert locked.status_code == 429 and "Too many failed logins" in locked.content.decode()

    refused = log_in(client, "ops")
    assert refused.status_code == 429
    assert not logged_in(client)


def test_a_username_is_locked_from_one_address_and_its_owner_still_gets_in_from_another(settings, login_log):
    """The attack of issue 23: five wrong passwords for admin from one address must not keep
    the real admin, at another address with the right password, out."""
    UserFactory(username="admin", is_staff=True, is_superuser=True)
    attacker = browser("127.0.0.2")
    tries = [log_in(attacker, "admin", "wrong").status_code for _ in range(settings.AXES_FAILURE_LIMIT)]
    refused = log_in(attacker, "admin", HTTP_X_REQUEST_ID="attacker-right")  # even the right one, from there

    owner = browser("127.0.0.3")
    assert log_in(owner, "admin", HTTP_X_REQUEST_ID="owner").status_code == 302 and logged_in(owner)

    assert tries == [200] * (settings.AXES_FAILURE_LIMIT - 1) + [429]
    assert refused.status_code == 429
    lines = {line["request_id"]: line for line in login_log() if line["request_id"] in {"attacker-right", "owner"}}
    assert (lines["attacker-right"]["event"], lines["attacker-right"]["reason"]) == ("login_failed", "locked_out")
    assert lines["owner"]["event"] == "login_succeeded"


def test_a_username_failing_from_many_addresses_is_slowed_down_not_locked(settings, login_log):
    UserFactory(username="ops", is_staff=True)
    limit = settings.AXES_FAILURE_LIMIT
    answers = [log_in(browser(f"192.0.2.{number}"), "ops", "wrong").status_code for number in range(limit + 2)]

    client = browser("198.51.100.7")
    assert log_in(client, "ops", HTTP_X_REQUEST_ID="right").status_code == 302 and logged_in(client)

    assert answers == [200] * (limit + 2)  # the form again: no address reached a limit
    slowed = [line for line in login_log() if line["event"] == "login_slowed"]
    # From the limit on, each attempt waits, twice as long per failure, up to the cap.
    assert [line["failures"] for line in slowed] == [limit, limit + 1, limit + 2]
    assert [line["seconds"] for line in slowed] == [
        min(settings.LOGIN_SLOWDOWN_SECONDS * 2**n, settings.LOGIN_SLOWDOWN_MAX_SECONDS) for n in range(3)
    ]
    assert slowed[-1]["request_id"] == "right" and slowed[-1]["client"] == "198.51.100.7"


def test_the_slowdown_doubles_per_failure_up_to_its_cap(settings):
    from config.staff.login_lockout import slowdown

    settings.AXES_FAILURE_LIMIT, settings.LOGIN_SLOWDOWN_SECONDS, settings.LOGIN_SLOWDOWN_MAX_SECONDS = 5, 1.0, 8.0
    assert [slowdown(failures) for failures in range(3, 11)] == [0, 0, 1, 2, 4, 8, 8, 8]


@pytest.fixture
def address_limit(settings):
    settings.AXES_ADDRESS_FAILURE_LIMIT = 8  # looser than the pair's 5: people behind one NAT
    return 8


def test_an_address_is_locked_for_every_username_past_its_looser_limit(address_limit):
    UserFactory(username="ops", is_staff=True)
    for number in range(address_limit - 1):
        log_in(browser("192.0.2.9"), f"guess-{number}", "wrong")
    assert log_in(browser("192.0.2.9"), "guess-x", "wrong").status_code == 429  # the limit's failure
    assert log_in(browser("192.0.2.9"), "ops").status_code == 429
    assert log_in(browser("192.0.2.10"), "ops").status_code == 302  # another address: in


def test_below_the_address_limit_other_usernames_from_that_address_get_in(address_limit):
    for number in range(address_limit - 2):
        log_in(browser("192.0.2.9"), f"guess-{number}", "wrong")
    UserFactory(username="ops", is_staff=True)
    assert log_in(browser("192.0.2.9"), "ops").status_code == 302


def test_behind_a_proxy_the_lockout_counts_the_forwarded_client_not_the_proxy(settings, address_limit):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}  # NUM_PROXIES=1: one proxy in front
    proxy = "10.0.0.1"
    for number in range(address_limit):
        log_in(browser(proxy), f"guess-{number}", "wrong", HTTP_X_FORWARDED_FOR="203.0.113.5")
    UserFactory(username="ops", is_staff=True)
    assert log_in(browser(proxy), "ops", HTTP_X_FORWARDED_FOR="203.0.113.5").status_code == 429
    assert log_in(browser(proxy), "ops", HTTP_X_FORWARDED_FOR="203.0.113.6").status_code == 302


def test_without_a_proxy_setting_a_forwarded_address_is_ignored(address_limit):
    for number in range(address_limit):
        log_in(browser("192.0.2.9"), f"guess-{number}", "wrong", HTTP_X_FORWARDED_FOR=f"203.0.113.{number}")
    UserFactory(username="ops", is_staff=True)
    assert log_in(browser("192.0.2.9"), "ops", HTTP_X_FORWARDED_FOR="203.0.113.99").status_code == 429


def test_failures_below_the_limit_are_forgotten_on_success():
    UserFactory(username="ops", is_staff=True)
    client = browser()
    for _ in range(4):
        log_in(client, "ops", "wrong")
    assert log_in(client, "ops").status_code == 302
    assert not AccessAttempt.objects.filter(username="ops").exists()


def test_axes_reset_username_unlocks_a_locked_user():
    UserFactory(username="ops", is_staff=True)
    for _ in range(5):
        log_in(browser("192.0.2.1"), "ops", "wrong")
    assert log_in(browser("192.0.2.1"), "ops").status_code == 429

    call_command("axes_reset_username", "ops")

    client = browser("192.0.2.1")
    assert log_in(client, "ops").status_code == 302 and logged_in(client)


def test_failures_are_kept_in_axes_failure_log():
    log_in(browser("192.0.2.5"), "nobody", "wrong")
    entry = AccessFailureLog.objects.get()
    assert (entry.username, entry.ip_address, entry.locked_out) == ("nobody", "192.0.2.5", False)


# ---------------------------------------------------------------------------------------------
# The login log


def test_every_failed_and_successful_login_is_logged_with_the_request_id(login_log):
    UserFactory(username="ops", is_staff=True)
    client = browser("192.0.2.7")
    log_in(client, "ops", "wrong", HTTP_X_REQUEST_ID="req-bad")
    log_in(client, "ops", HTTP_X_REQUEST_ID="req-good")

    failed, succeeded = login_log()
    assert (failed["event"], failed["username"], failed["client"], failed["request_id"]) == (
        "login_failed",
        "ops",
        "192.0.2.7",
        "req-bad",
    )
    assert (failed["level"], failed["reason"]) == ("WARNING", "password")
    assert (succeeded["event"], succeeded["username"], succeeded["staff"], succeeded["request_id"]) == (
        "login_succeeded",
        "ops",
        True,
        "req-good",
    )
    assert PASSWORD not in json.dumps(login_log())


def test_a_lockout_is_logged(login_log):
    for _ in range(5):
        log_in(browser("192.0.2.8"), "ops", "wrong", HTTP_X_REQUEST_ID="req-lock")
    locked = [line for line in login_log() if line["event"] == "login_locked_out"]
    assert locked and locked[0]["client"] == "192.0.2.8" and locked[0]["request_id"] == "req-lock"


# ---------------------------------------------------------------------------------------------
# Two-factor authentication (TOTP)


def test_staff_with_an_authenticator_need_its_code():
    device = enrol(UserFactory(username="ops", is_staff=True))
    client = browser()
    without = log_in(client, "ops")
    assert without.status_code == 200 and "Enter the 6-digit code" in without.content.decode()
    wrong = log_in(client, "ops", code="000000" if code_of(device) != "000000" else "111111")
    assert wrong.status_code == 200 and "wrong or expired" in wrong.content.decode()
    assert not logged_in(client)

    device.refresh_from_db()
    assert device.throttling_failure_count == 1  # django-otp makes the next try wait (1 s, then 2 s, ...)
    device.throttle_reset()
    assert log_in(client, "ops", code=code_of(device)).status_code == 302
    assert logged_in(client)


def test_a_wrong_code_is_logged_as_a_failed_login(login_log):
    device = enrol(UserFactory(username="ops", is_staff=True))
    log_in(browser(), "ops", code="000000" if code_of(device) != "000000" else "111111")
    assert [(line["event"], line["reason"]) for line in login_log()] == [("login_failed", "one-time code")]


def test_staff_without_an_authenticator_log_in_with_their_password():
    client = browser()
    assert log_in(client, UserFactory(is_staff=True).username).status_code == 302
    assert logged_in(client)


def test_with_admin_require_2fa_a_superuser_without_an_authenticator_is_refused(settings):
    settings.ADMIN_REQUIRE_2FA = True
    UserFactory(username="root", is_staff=True, is_superuser=True)
    client = browser()
    refused = log_in(client, "root")
    assert refused.status_code == 200 and "totp_enrol" in refused.content.decode()
    assert not logged_in(client)


def test_with_admin_require_2fa_a_superuser_logs_in_with_a_code(settings):
    settings.ADMIN_REQUIRE_2FA = True
    device = enrol(UserFactory(username="root", is_staff=True, is_superuser=True))
    client = browser()
    assert log_in(client, "root", code=code_of(device)).status_code == 302
    assert logged_in(client)


def test_with_admin_require_2fa_an_unverified_superuser_session_is_sent_to_the_login(settings):
    settings.ADMIN_REQUIRE_2FA = True
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))  # a session from before, unverified
    assert client.get(INDEX).status_code == 302
    settings.ADMIN_REQUIRE_2FA = False
    assert client.get(INDEX).status_code == 200


def test_the_admin_never_shows_an_authenticators_secret():
    device = enrol(UserFactory(is_staff=True))
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    for name in ("otp_totp_totpdevice_config", "otp_totp_totpdevice_qrcode"):
        assert client.get(reverse(f"admin:{name}", args=[device.pk])).status_code == 403
    page = client.get(reverse("admin:otp_totp_totpdevice_change", args=[device.pk])).content.decode()
    assert device.key not in page


# ---------------------------------------------------------------------------------------------
# manage.py totp_enrol


def test_totp_enrol_prints_the_secret_once_and_the_login_then_asks_for_the_code(capsys):
    UserFactory(username="ops", is_staff=True)
    call_command("totp_enrol", "ops")
    out = capsys.readouterr().out
    device = TOTPDevice.objects.get(user__username="ops")
    assert device.confirmed and device.config_url in out
    client = browser()
    assert log_in(client, "ops").status_code == 200
    assert log_in(client, "ops", code=code_of(device)).status_code == 302


def test_totp_enrol_refuses_a_second_device_unless_replaced():
    user = UserFactory(username="ops", is_staff=True)
    call_command("totp_enrol", "ops")
    first = TOTPDevice.objects.get(user=user)
    with pytest.raises(CommandError, match="already has an authenticator") as refused:
        call_command("totp_enrol", "ops")
    assert refused.value.returncode == 1
    call_command("totp_enrol", "ops", "--replace")
    assert list(TOTPDevice.objects.filter(user=user).values_list("key", flat=True)) != [first.key]
    call_command("totp_enrol", "ops", "--remove")
    assert not TOTPDevice.objects.filter(user=user).exists()


@pytest.mark.parametrize("user", [None, {"is_staff": False}, {"is_staff": True, "is_active": False}])
def test_totp_enrol_refuses_unknown_inactive_or_non_staff_users(user):
    if user is not None:
        UserFactory(username="ops", **user)
    with pytest.raises(CommandError, match="No active staff user") as refused:
        call_command("totp_enrol", "ops")
    assert refused.value.returncode == 1


def test_the_test_clients_login_still_works_it_has_no_request_to_count():
    user = UserFactory(is_staff=True)
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    assert logged_in(client)
    assert not client.login(username=user.username, password="wrong")
