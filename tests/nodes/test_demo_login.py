"""manage.py demo_login: only under DEBUG (or an explicit flag), and never on a user it did not make."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from nodes.management.commands.demo_login import DEMO_EMAIL
from tests.factories import UserFactory
from tests.support import manage
from tokens.models import ApiToken
from tokens.services import token_create

pytestmark = pytest.mark.django_db
User = get_user_model()


def password_of(output: str) -> str:
    return output.split("password: ")[1].split()[0]


@pytest.mark.django_db(transaction=True)
def test_refuses_with_exit_1_when_debug_is_off():
    result = manage("demo_login")  # the test settings are production's: DEBUG off
    assert result.returncode == 1
    assert "DEBUG" in result.stderr and "--i-know-this-is-not-production" in result.stderr
    assert not User.objects.filter(username="admin").exists()


def test_under_debug_makes_a_superuser_and_prints_its_password(settings, capsys):
    settings.DEBUG = True
    call_command("demo_login")
    user = User.objects.get(username="admin")
    assert (user.is_staff, user.is_superuser, user.email) == (True, True, DEMO_EMAIL)
    assert user.check_password(password_of(capsys.readouterr().out))


def test_the_explicit_flag_runs_it_without_debug(capsys):
    call_command("demo_login", "--i-know-this-is-not-production", "--username", "demo")
    assert User.objects.get(username="demo").check_password(password_of(capsys.readouterr().out))


def test_a_second_run_resets_the_demo_users_password(settings, capsys):
    settings.DEBUG = True
    call_command("demo_login")
    first = password_of(capsys.readouterr().out)
    call_command("demo_login")
    second = password_of(capsys.readouterr().out)
    user = User.objects.get(username="admin")
    assert first != second and user.check_password(second) and not user.check_password(first)


def test_never_touches_an_existing_user_it_did_not_make(settings):
    settings.DEBUG = True
    real = UserFactory(username="admin", email="ops@example.com", is_staff=False, is_superuser=False)
    before = User.objects.filter(pk=real.pk).values().get()
    with pytest.raises(CommandError, match="was not made by demo_login") as refused:
        call_command("demo_login")
    assert refused.value.returncode == 1
    assert User.objects.filter(pk=real.pk).values().get() == before


def test_with_a_kept_password_a_second_run_leaves_the_login_and_its_api_tokens_alone(settings, capsys):
    # make run's .env.quickstart holds DEMO_LOGIN_PASSWORD: every start prints the same login,
    # and an integrator's token minted for it survives the next start.
    settings.DEBUG, settings.DEMO_LOGIN_PASSWORD = True, "kept-demo-password-1"
    call_command("demo_login", "--addr", "127.0.0.1:8001")
    first = capsys.readouterr().out
    assert "Admin login: http://127.0.0.1:8001/admin/" in first
    assert password_of(first) == "kept-demo-password-1"
    user = User.objects.get(username="admin")
    token, _key = token_create(user=user, name="integrator")
    call_command("demo_login")
    second = capsys.readouterr().out
    assert password_of(second) == "kept-demo-password-1" and "http://127.0.0.1:8000/admin/" in second
    assert ApiToken.objects.filter(pk=token.pk).exists()
    assert User.objects.get(username="admin").check_password("kept-demo-password-1")
