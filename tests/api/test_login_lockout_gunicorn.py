"""Admin login lockout through real HTTP: gunicorn (2 workers, the test settings), a browser-
like client doing the CSRF login flow, from chosen loopback addresses. After AXES_FAILURE_LIMIT
wrong passwords from one address the right one is refused from there, whichever worker answers;
each failure is logged with its request id; the operator's `axes_reset_username` lets the user
in again. From another address the owner gets in with the right password, slowed down."""

import functools
import http.client
import http.cookiejar
import re
import urllib.error
import urllib.parse
import urllib.request

import pytest
from django.conf import settings
from django.core.management import call_command

from tests.api.gunicorn import gunicorn
from tests.factories import UserFactory

PASSWORD = "pw-for-tests"  # UserFactory's


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a 302 comes back as the answer


class FromAddress(urllib.request.HTTPHandler):
    """Connects from a chosen local address (any of 127.0.0.0/8 reaches a server on 127.0.0.1)."""

    def __init__(self, address: str):
        super().__init__()
        self.address = address

    def http_open(self, req):
        return self.do_open(functools.partial(http.client.HTTPConnection, source_address=(self.address, 0)), req)


class Browser:
    """Cookies, the login page's CSRF token and the form post, as a browser sends them."""

    def __init__(self, base_url: str, address: str = "127.0.0.1"):
        self.base_url = base_url
        self.cookies = http.cookiejar.CookieJar()
        handlers = [urllib.request.HTTPCookieProcessor(self.cookies), NoRedirect, FromAddress(address)]
        self.opener = urllib.request.build_opener(*handlers)

    def request(self, path: str, data: dict | None = None, **headers) -> tuple[int, str, dict]:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        request = urllib.request.Request(self.base_url + path, data=body, headers=headers)
        try:
            with self.opener.open(request, timeout=60) as response:
                return response.status, response.read().decode(), dict(response.headers)
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(), dict(error.headers)

    def log_in(self, username: str, password: str, request_id: str) -> int:
        self.request("/admin/login/")
        token = next(cookie.value for cookie in self.cookies if cookie.name == "csrftoken")
        form = {"username": username, "password": password, "csrfmiddlewaretoken": token, "next": "/admin/"}
        status, _, _ = self.request("/admin/login/", form, **{"X-Request-ID": request_id, "Referer": self.base_url})
        return status


@pytest.mark.django_db(transaction=True)
def test_the_right_password_is_refused_after_repeated_wrong_ones_under_gunicorn(tmp_path):
    UserFactory(username="ops", is_staff=True)
    log = tmp_path / "gunicorn.log"
    with gunicorn(workers=2, log=log, settings_module="config.settings_test") as base_url:
        browser = Browser(base_url)
        wrong = [browser.log_in("ops", "wrong", f"try-{n}") for n in range(settings.AXES_FAILURE_LIMIT)]
        refused = browser.log_in("ops", PASSWORD, "right-but-locked")
        fresh_client = Browser(base_url).log_in("ops", PASSWORD, "fresh-client")

        call_command("axes_reset_username", "ops")
        unlocked = Browser(base_url).log_in("ops", PASSWORD, "after-reset")

    assert wrong[:-1] == [200] * (settings.AXES_FAILURE_LIMIT - 1)  # the form again, with its error
    assert wrong[-1] == 429
    assert refused == 429
    assert fresh_client == 429  # a fresh cookie jar changes nothing
    assert unlocked == 302  # to /admin/
    text = log.read_text()
    for n in range(settings.AXES_FAILURE_LIMIT):
        assert re.search(rf"\[try-{n}\] login_failed username=ops reason=password client=127\.0\.0\.1", text), text
    assert "[try-4] login_locked_out username=ops client=127.0.0.1" in text


@pytest.mark.django_db(transaction=True)
def test_five_wrong_passwords_from_one_address_do_not_lock_the_owner_out_from_another_under_gunicorn(tmp_path):
    """Issue 23: from 127.0.0.2, five wrong passwords for admin (200 200 200 200 429); then the
    admin, from 127.0.0.3 with the right password, is let in (slowed down), not refused."""
    UserFactory(username="admin", is_staff=True, is_superuser=True)
    log = tmp_path / "gunicorn.log"
    with gunicorn(workers=2, log=log, settings_module="config.settings_test") as base_url:
        attacker = Browser(base_url, "127.0.0.2")
        tries = [attacker.log_in("admin", "wrong", f"attack-{n}") for n in range(settings.AXES_FAILURE_LIMIT)]
        attacker_right = attacker.log_in("admin", PASSWORD, "attacker-right")
        owner = Browser(base_url, "127.0.0.3")
        owner_answer = owner.log_in("admin", PASSWORD, "owner")
        index, _, _ = owner.request("/admin/")

    assert tries == [200] * (settings.AXES_FAILURE_LIMIT - 1) + [429]
    assert attacker_right == 429  # that pair stays locked, right password or not
    assert (owner_answer, index) == (302, 200)
    text = log.read_text()
    assert "[attack-0] login_failed username=admin reason=password client=127.0.0.2" in text
    assert "[attacker-right] login_failed username=admin reason=locked_out client=127.0.0.2" in text
    assert re.search(r"\[owner\] login_slowed username=admin failures=\d+ seconds=[0-9.]+ client=127\.0\.0\.3", text), (
        text
    )
