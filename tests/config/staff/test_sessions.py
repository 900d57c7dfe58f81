"""Staff sessions: 8 hours at most (SESSION_COOKIE_AGE) and 30 minutes idle (STAFF_IDLE_TIMEOUT),
whatever keeps the cookie alive; the last use is written at most once a minute."""

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import reverse

from config.staff import sessions
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

INDEX = reverse("admin:index")


class Clock:
    """config.staff.sessions' time.time(), moved by hand."""

    def __init__(self, monkeypatch):
        self.now = 1_800_000_000.0
        monkeypatch.setattr(sessions.time, "time", lambda: self.now)


@pytest.fixture
def clock(monkeypatch):
    return Clock(monkeypatch)


def staff_client(**fields) -> Client:
    client = Client()
    client.force_login(UserFactory(is_staff=True, **fields))
    return client


def test_the_defaults_are_8_hours_and_30_minutes_idle():
    assert django_settings.SESSION_COOKIE_AGE == 8 * 3600
    assert django_settings.STAFF_IDLE_TIMEOUT == 30 * 60


def test_an_idle_staff_session_ends(clock):
    client = staff_client()
    assert client.get(INDEX).status_code == 200
    clock.now += 30 * 60 + 1
    assert client.get(INDEX).status_code == 302  # to the login page
    clock.now += 1
    assert client.get(INDEX).status_code == 302  # the session is gone, not only refused once


def test_an_active_staff_session_ends_after_8_hours(clock):
    client = staff_client()
    for _ in range(8 * 4):  # a request every 15 minutes: never idle
        assert client.get(INDEX).status_code == 200
        clock.now += 15 * 60
    clock.now += 60
    assert client.get(INDEX).status_code == 302


def test_a_new_login_starts_the_clocks_afresh(clock):
    user = UserFactory(is_staff=True)
    client = Client()
    client.force_login(user)
    client.get(INDEX)
    clock.now += 31 * 60
    client.force_login(user)
    assert client.get(INDEX).status_code == 200


def test_the_last_use_is_written_at_most_once_a_minute(clock):
    client = staff_client()
    client.get(INDEX)
    seen = client.session[sessions.LAST_SEEN]
    clock.now += 59
    client.get(INDEX)
    assert client.session[sessions.LAST_SEEN] == seen
    clock.now += 1
    client.get(INDEX)
    assert client.session[sessions.LAST_SEEN] == seen + 60


def test_sessions_of_non_staff_users_are_left_to_the_cookie_age(clock):
    client = Client()
    user = UserFactory(is_staff=False)
    client.force_login(user)
    clock.now += 31 * 60
    client.get("/api/v1/hosts/")
    assert client.session.get("_auth_user_id") == str(user.pk)
