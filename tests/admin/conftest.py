"""Helpers for the admin tests: staff users with given permissions, logged-in clients (one that
enforces CSRF like a browser), posting an admin action, and reading the messages shown."""

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.urls import reverse

from tests.factories import UserFactory

#: What a support person needs to see the fleet.
VIEW = [
    "hosts.view_host",
    "hosts.view_counterrepair",
    "nodes.view_node",
    "nodes.view_image",
    "nodes.view_nodelog",
    "nodes.view_command",
]


def staff(*permissions: str):
    return UserFactory(is_staff=True, permissions=[*VIEW, *permissions])


def client_for(user, *, csrf: bool = False) -> Client:
    """A logged-in client; with `csrf`, one that enforces CSRF checks and holds a token."""
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(user)
    if csrf:
        client.get(reverse("admin:index"))  # sets the csrftoken cookie
    return client


def post_action(client: Client, changelist: str, action: str, ids, *, csrf_token: bool = True, **data):
    """Posts an action as the admin's pages do (the changelist form, then each intermediate page)."""
    payload = {"action": action, "_selected_action": [str(pk) for pk in ids], **data}
    if csrf_token and "csrftoken" in client.cookies:
        payload["csrfmiddlewaretoken"] = client.cookies["csrftoken"].value
    return client.post(reverse(changelist), payload)


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def action_names(response) -> set[str]:
    """The actions the changelist offers (its action <select>)."""
    form = response.context["action_form"]  # None when the user may run no action at all
    return {value for value, _label in form.fields["action"].choices if value} if form else set()


@pytest.fixture
def analyzed():
    """ANALYZE the given tables so PostgreSQL's statistics (reltuples) count their rows."""

    def run(*tables: str):
        with connection.cursor() as cursor:
            for table in tables:
                cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")

    return run
