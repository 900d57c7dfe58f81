"""API tokens in the admin: support sees owner, name, first characters and expiry (never a key)
and revokes a token by deleting it; nobody adds or edits one there."""

import pytest
from django.urls import reverse

from tests.admin.conftest import client_for
from tests.factories import UserFactory
from tokens.models import ApiToken
from tokens.services import token_create

pytestmark = pytest.mark.django_db


def test_support_lists_tokens_without_keys_and_revokes_one_by_deleting_it():
    token, key = token_create(user=UserFactory(username="ci-bot"), name="deploys")
    admin = client_for(UserFactory(is_staff=True, is_superuser=True))

    listed = admin.get(reverse("admin:tokens_apitoken_changelist"))
    shown = admin.get(reverse("admin:tokens_apitoken_change", args=[token.pk]))
    deleted = admin.post(reverse("admin:tokens_apitoken_delete", args=[token.pk]), {"post": "yes"})

    assert listed.status_code == shown.status_code == 200
    page = listed.content.decode() + shown.content.decode()
    assert "ci-bot" in page and "deploys" in page and token.prefix in page
    assert key not in page and token.digest not in page
    assert deleted.status_code == 302
    assert not ApiToken.objects.exists()


def test_tokens_cannot_be_added_or_edited_in_the_admin():
    token, _ = token_create(user=UserFactory())
    admin = client_for(UserFactory(is_staff=True, is_superuser=True))

    assert admin.get(reverse("admin:tokens_apitoken_add")).status_code == 403
    answer = admin.post(reverse("admin:tokens_apitoken_change", args=[token.pk]), {"name": "renamed"})
    assert answer.status_code == 403
    assert ApiToken.objects.get().name == ""
