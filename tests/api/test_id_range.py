"""Ids past a BigAutoField's range (2**63-1) in a path answer 404 problem details on both
databases: PostgreSQL here, the quick start's SQLite in a subprocess (where the lookup used to
raise OverflowError: a 500 with Django's HTML page)."""

import json
import os
import subprocess
import sys

import pytest
from django.urls import get_resolver
from django.urls.converters import IntConverter
from django.urls.resolvers import URLPattern, URLResolver

from hosts.agent_tokens import agent_token_issue
from tests.factories import HostFactory, UserFactory
from tests.support import ROOT
from tokens.services import token_create

pytestmark = pytest.mark.django_db

PAST = [str(2**63), str(2**64), "9" * 19, "1" + "0" * 30]
IN_RANGE_BUT_NONE = str(2**63 - 1)


def id_paths(command_id: str) -> list[tuple[str, str]]:
    """(token kind, path) of every path that takes an integer id."""
    return [
        ("user", f"/api/v1/commands/{command_id}/cancel/"),
        ("agent", f"/api/v1/agent/commands/{command_id}/ack/"),
        ("agent", f"/api/v1/agent/commands/{command_id}/result/"),
    ]


def _patterns(resolver, prefix=""):
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            yield from _patterns(entry, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry.pattern.converters


def test_no_route_takes_an_unbounded_int():
    # Every integer id is a <bigint:...> (config/http/converters.py); a new <int:...> route would let
    # 2**63 reach the database again. And id_paths() above lists every bigint route.
    # (django-otp's admin has two <int:pk> pages of its own: the SQLite test below opens them.)
    routes = [(route, converters) for route, converters in _patterns(get_resolver()) if route.startswith("api/")]
    unbounded = [route for route, converters in routes if any(isinstance(c, IntConverter) for c in converters.values())]
    assert unbounded == []
    bounded = sorted(route for route, converters in routes if "bigint" in route)
    assert len(bounded) == len(id_paths("0")), bounded


def post_all(client, user_key, agent_key, command_id):
    answers = []
    for kind, path in id_paths(command_id):
        key = user_key if kind == "user" else agent_key
        body = json.dumps({"outcome": "succeeded"}) if path.endswith("result/") else ""
        response = client.post(path, body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}")
        answers.append((path, response.status_code, response["Content-Type"], response.json().get("code")))
    return answers


@pytest.mark.parametrize("command_id", [*PAST, IN_RANGE_BUT_NONE])
def test_postgresql_answers_404_problem_details(client, command_id):
    user = UserFactory(is_superuser=True)
    _, user_key = token_create(user=user)
    agent_key = agent_token_issue(host=HostFactory())
    for path, status, content_type, code in post_all(client, user_key, agent_key, command_id):
        assert (status, content_type, code) == (404, "application/problem+json", "not_found"), path


SQLITE_SCRIPT = """
import json, sys
import django
django.setup()
from django.core.management import call_command
from django.test import Client
call_command("migrate", "--no-input", "-v", "0")
from django.contrib.auth import get_user_model
from hosts.agent_tokens import agent_token_issue
from tests.api.test_id_range import PAST, IN_RANGE_BUT_NONE, post_all
from tests.factories import HostFactory
from tokens.services import token_create
user = get_user_model().objects.create_superuser("root", "root@example.invalid", "pw-for-tests")
_, user_key = token_create(user=user)
agent_key = agent_token_issue(host=HostFactory())
client = Client(raise_request_exception=False)
answers = []
for command_id in [*PAST, IN_RANGE_BUT_NONE]:
    answers += post_all(client, user_key, agent_key, command_id)
client.force_login(user)
for command_id in PAST:  # the admin's pages of one command and the searches by id
    for path in (
        f"/admin/nodes/command/{command_id}/change/", f"/admin/nodes/command/?q={command_id}",
        f"/admin/nodes/nodelog/{command_id}/change/", f"/admin/nodes/nodelog/?q={command_id}",
        f"/admin/otp_totp/totpdevice/{command_id}/config/", f"/admin/otp_totp/totpdevice/{command_id}/qrcode/",
    ):
        answers.append((path, client.get(path).status_code, "", ""))
print(json.dumps(answers))
"""


@pytest.mark.slow
def test_the_quick_starts_sqlite_answers_404_problem_details(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "1",  # as make run serves it
        "SECRET_KEY": "tests-only-not-a-secret",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'quickstart.sqlite3'}",
        "API_WRITE_THROTTLE_RATE": "",
        "API_AUTH_FAILURE_RATE": "",
    }
    result = subprocess.run(
        [sys.executable, "-c", SQLITE_SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout.strip().splitlines()[-1])
    api = [answer for answer in answers if answer[0].startswith("/api/")]
    admin = [answer for answer in answers if answer[0].startswith("/admin/")]
    assert api and all(tuple(a[1:]) == (404, "application/problem+json", "not_found") for a in api), api
    assert admin and all(a[1] in (200, 302, 403, 404) for a in admin), admin
