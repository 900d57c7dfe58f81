"""manage.py api_token USERNAME [--no-expiry] (§6): prints the key once, alone on stdout's last
line; exit 0, 1 for an unknown or inactive user, 2 on a usage error."""

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from tests.api.conftest import READ_PERMISSIONS
from tests.factories import UserFactory
from tests.support import manage
from tokens import keys
from tokens.models import ApiToken


@pytest.mark.django_db(transaction=True)  # manage.py runs in another process: it must see the user
def test_api_token_prints_a_working_key_once_and_stores_its_digest():
    user = UserFactory(username="ci-bot", permissions=READ_PERMISSIONS)

    minted = manage("api_token", "ci-bot", "--name", "deploys")

    assert minted.returncode == 0, minted.stderr
    key = minted.stdout.strip().splitlines()[-1]
    assert minted.stdout.strip() == key and keys.is_well_formed(key)
    token = ApiToken.objects.get(user=user)
    assert (token.digest, token.name) == (keys.digest(key), "deploys")
    assert token.expires_at is not None and "expires" in minted.stderr
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert client.get("/api/v1/nodes/").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_api_token_no_expiry_mints_a_token_that_never_expires():
    UserFactory(username="forever")

    minted = manage("api_token", "forever", "--no-expiry")

    assert minted.returncode == 0, minted.stderr
    assert ApiToken.objects.get().expires_at is None
    assert "never expires" in minted.stderr


@pytest.mark.django_db(transaction=True)
def test_api_token_refuses_an_unknown_or_inactive_user_with_exit_1():
    get_user_model().objects.create_user("gone", is_active=False)

    unknown, inactive = manage("api_token", "nobody-here"), manage("api_token", "gone")

    assert (unknown.returncode, inactive.returncode) == (1, 1)
    assert "No user 'nobody-here'" in unknown.stderr and "inactive" in inactive.stderr
    assert unknown.stdout == inactive.stdout == ""
    assert not ApiToken.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_api_token_usage_errors_exit_2():
    UserFactory(username="ops")

    assert manage("api_token").returncode == 2
    assert manage("api_token", "ops", "--expiry-days", "3").returncode == 2
    assert manage("api_token", "ops", "--name", "x" * 101).returncode == 2
    assert not ApiToken.objects.exists()
