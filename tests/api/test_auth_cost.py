"""What authentication and permission checks cost an authenticated API write (issue 12): ONE SQL
statement (the token, its user and the user's permissions together), nothing cached between
requests, so a revoked token or a removed permission counts from the very next request."""

import pytest
from django.contrib.auth.models import Group, Permission
from rest_framework.test import APIClient

from config.errors import ApplicationError
from nodes.changes import node_upgrade
from tests.api.conftest import assert_problem
from tests.factories import UserFactory, place_node
from tokens.services import token_create, token_revoke

pytestmark = pytest.mark.django_db

AUTH_TABLES = ("auth_", "tokens_apitoken", "django_session", "django_content_type")


def authorized(key):
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def auth_statements(statements):
    return [sql for sql in statements if any(table in sql for table in AUTH_TABLES)]


def test_an_authenticated_upgrade_costs_one_statement_more_than_the_service(fleet, queries):
    user = UserFactory(permissions=["nodes.upgrade_node"])
    _, key = token_create(user=user)
    by_service, by_api = (place_node(host=fleet["host"], image=fleet["v1"], name=name) for name in ("svc", "api"))
    image_id = fleet["v2"].pk

    with queries() as service_statements:
        try:
            node_upgrade(node_id=by_service.pk, image_id=image_id, actor=user)
            service_ok = True
        except ApplicationError:
            service_ok = False
    with queries() as request_statements:
        response = APIClient().post(
            f"/api/v1/nodes/{by_api.pk}/upgrade/", {"image_id": str(image_id)}, format="json", **authorized(key)
        )

    assert (response.status_code == 200) == service_ok, response.content
    (lookup,) = auth_statements(request_statements)
    assert "tokens_apitoken" in lookup and "auth_permission" in lookup  # one statement: token, user, permissions
    assert len(request_statements) == len(service_statements) + 1, request_statements


def test_a_refused_write_costs_one_statement_too(fleet, queries):
    _, key = token_create(user=UserFactory(permissions=["nodes.view_node"]))

    with queries() as statements:
        response = APIClient().delete(f"/api/v1/nodes/{fleet['node'].pk}/", **authorized(key))

    assert_problem(response, 403, "permission_denied")
    assert len(statements) == 1


def test_group_permissions_come_in_the_same_statement(fleet, queries):
    group = Group.objects.create(name="readers")
    group.permissions.add(Permission.objects.get(codename="view_host"))
    user = UserFactory()
    user.groups.add(group)
    _, key = token_create(user=user)

    with queries() as statements:
        response = APIClient().get(f"/api/v1/hosts/{fleet['host'].pk}/", **authorized(key))

    assert response.status_code == 200
    assert len(auth_statements(statements)) == 1


def test_a_removed_permission_refuses_the_very_next_write(fleet):
    user = UserFactory(permissions=["nodes.view_node", "nodes.delete_node"])
    _, key = token_create(user=user)
    client = APIClient()
    assert client.get("/api/v1/nodes/", **authorized(key)).status_code == 200

    user.user_permissions.remove(Permission.objects.get(codename="delete_node"))

    assert_problem(client.delete(f"/api/v1/nodes/{fleet['node'].pk}/", **authorized(key)), 403, "permission_denied")


def test_a_revoked_token_is_refused_on_the_very_next_request(fleet):
    user = UserFactory(permissions=["nodes.view_node", "nodes.delete_node"])
    token, key = token_create(user=user)
    client = APIClient()
    assert client.get("/api/v1/nodes/", **authorized(key)).status_code == 200

    token_revoke(user=user, token_id=token.pk)

    assert_problem(client.delete(f"/api/v1/nodes/{fleet['node'].pk}/", **authorized(key)), 401, "not_authenticated")
