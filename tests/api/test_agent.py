"""The agent API (§9): polling, ack and result over HTTP, strict input, problem details, the
cancel endpoint and `manage.py agent_token`."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from hosts.agent_tokens import agent_token_issue
from hosts.models import Host
from nodes.changes import node_upgrade
from nodes.models import Command
from tests.api.conftest import PROBLEM, agent_client, assert_problem
from tests.factories import HostFactory, ImageFactory, UserFactory, place_node
from tests.support import fleet_snapshot, manage

pytestmark = pytest.mark.django_db

COMMANDS = "/api/v1/agent/commands/"


def ack_url(command) -> str:
    return f"{COMMANDS}{command.pk}/ack/"


def result_url(command) -> str:
    return f"{COMMANDS}{command.pk}/result/"


@pytest.fixture
def setup():
    host = HostFactory()
    old, new = ImageFactory(), ImageFactory()
    node = place_node(host=host, image=old)
    node_upgrade(node_id=node.pk, image_id=new.pk)
    command = Command.objects.get(node_id=node.pk, status="pending")
    return {"host": host, "node": node, "command": command, "agent": agent_client(host), "old": old, "new": new}


# ---------------------------------------------------------------------------------------------
# Poll


def test_poll_lists_the_hosts_open_due_commands_oldest_first(setup):
    host, command = setup["host"], setup["command"]
    creating = place_node(host=host, image=setup["old"], running=False)
    hidden = place_node(host=host, image=setup["old"], running=False)
    Command.objects.filter(node_id=hidden.pk).update(not_before=timezone.now() + timedelta(minutes=5))
    place_node(host=HostFactory(), image=setup["old"], running=False)  # another host's

    response = setup["agent"].get(COMMANDS)

    assert response.status_code == 200
    results = response.json()["results"]
    create_command = Command.objects.get(node_id=creating.pk)
    assert [item["id"] for item in results] == [command.pk, create_command.pk]
    assert set(results[0]) == {"id", "kind", "node_id", "payload", "status", "attempts", "created_at"}
    assert (results[0]["kind"], results[0]["node_id"], results[0]["status"]) == (
        "node_upgrade",
        str(setup["node"].pk),
        "pending",
    )
    assert set(results[0]["payload"]) == {"from", "to"}
    assert set(results[0]["payload"]["to"]) == {"image_id", "properties", "allocation"}


def test_poll_returns_at_most_100(setup):
    free = ImageFactory(min_cpu_cores=0, min_memory_bytes=0, min_disk_bytes=0)
    for number in range(101):
        place_node(host=setup["host"], image=free, name=f"bulk-{number}", running=False)

    results = setup["agent"].get(COMMANDS).json()["results"]

    assert len(results) == 100
    assert results[0]["id"] == setup["command"].pk


def test_an_empty_poll_costs_at_most_two_statements_and_records_the_agent_once_a_minute():
    host = HostFactory()
    agent = agent_client(host)

    with CaptureQueriesContext(connection) as first:
        assert agent.get(COMMANDS).json() == {"results": []}
    host.refresh_from_db()
    seen = host.agent_seen_at
    assert seen is not None
    assert len(first) == 2  # the host by its token with its due commands (one statement); agent_seen_at

    with CaptureQueriesContext(connection) as again:
        assert agent.get(COMMANDS).status_code == 200
    assert len(again) == 1, [q["sql"] for q in again.captured_queries]  # §9: at most two
    host.refresh_from_db()
    assert host.agent_seen_at == seen

    Host.objects.filter(pk=host.pk).update(agent_seen_at=seen - timedelta(seconds=61))
    with CaptureQueriesContext(connection) as later:
        agent.get(COMMANDS)
    assert len(later) == 2
    host.refresh_from_db()
    assert host.agent_seen_at > seen


# ---------------------------------------------------------------------------------------------
# Ack and result


def test_ack_then_result_over_http(setup):
    agent, command, node = setup["agent"], setup["command"], setup["node"]

    acked = agent.post(ack_url(command))
    again = agent.post(ack_url(command), {}, format="json")
    result = agent.post(result_url(command), {"outcome": "succeeded", "message": "done"}, format="json")
    repeat = agent.post(result_url(command), {"outcome": "succeeded"}, format="json")

    assert (acked.status_code, again.status_code, result.status_code, repeat.status_code) == (200, 200, 200, 200)
    assert acked.json()["status"] == "acked" and acked.json()["acked_at"]
    body = result.json()
    assert (body["status"], body["message"], body["id"]) == ("succeeded", "done", command.pk)
    assert body["finished_at"] and body["acked_at"]
    node.refresh_from_db()
    assert node.state == "running"


def test_another_outcome_on_a_closed_command_is_409_command_closed(setup):
    agent, command = setup["agent"], setup["command"]
    agent.post(result_url(command), {"outcome": "rolled_back"}, format="json")
    before = fleet_snapshot()

    response = agent.post(result_url(command), {"outcome": "failed"}, format="json")
    ack = agent.post(ack_url(command))

    assert assert_problem(response, 409, "command_closed")["command_status"] == "rolled_back"
    assert assert_problem(ack, 409, "command_closed")["command_status"] == "rolled_back"
    assert fleet_snapshot() == before


def test_another_hosts_command_answers_404(setup):
    stranger = agent_client(HostFactory())
    command = setup["command"]

    for response in (
        stranger.post(ack_url(command)),
        stranger.post(result_url(command), {"outcome": "succeeded"}, format="json"),
        stranger.post(f"{COMMANDS}999999999/ack/"),
    ):
        assert_problem(response, 404, "not_found")
    command.refresh_from_db()
    assert command.status == "pending"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"outcome": "succeeded", "extra": 1}, "extra"),
        ({}, "outcome"),
        ({"outcome": "done"}, "outcome"),
        ({"outcome": 1}, "outcome"),
        ({"outcome": "succeeded", "message": 5}, "message"),
        ({"outcome": "succeeded", "message": "x" * 2001}, "message"),
        ({"outcome": "retry_later"}, "retry_after_seconds"),
        ({"outcome": "retry_later", "retry_after_seconds": 0}, "retry_after_seconds"),
        ({"outcome": "retry_later", "retry_after_seconds": 86401}, "retry_after_seconds"),
        ({"outcome": "retry_later", "retry_after_seconds": "60"}, "retry_after_seconds"),
        ({"outcome": "retry_later", "retry_after_seconds": 60.0}, "retry_after_seconds"),
        ({"outcome": "retry_later", "retry_after_seconds": True}, "retry_after_seconds"),
        ({"outcome": "succeeded", "retry_after_seconds": 60}, "retry_after_seconds"),
    ],
)
def test_malformed_results_are_400_invalid_and_change_nothing(setup, body, field):
    before = fleet_snapshot()

    response = setup["agent"].post(result_url(setup["command"]), body, format="json")

    assert field in assert_problem(response, 400, "invalid")["errors"]
    assert fleet_snapshot() == before


def test_an_outcome_the_kind_does_not_have_is_400_invalid(setup):
    creating = place_node(host=setup["host"], image=setup["old"], running=False)
    command = Command.objects.get(node_id=creating.pk)

    response = setup["agent"].post(result_url(command), {"outcome": "rolled_back"}, format="json")

    assert "outcome" in assert_problem(response, 400, "invalid")["errors"]


def test_retry_later_hides_the_command_from_polls(setup):
    agent, command = setup["agent"], setup["command"]

    response = agent.post(result_url(command), {"outcome": "retry_later", "retry_after_seconds": 60}, format="json")

    assert (response.status_code, response.json()["status"], response.json()["attempts"]) == (200, "pending", 1)
    assert agent.get(COMMANDS).json()["results"] == []
    Command.objects.filter(pk=command.pk).update(not_before=timezone.now() - timedelta(seconds=1))
    assert [item["id"] for item in agent.get(COMMANDS).json()["results"]] == [command.pk]


BAD_BODIES = [
    b"",
    b"null",
    b"[]",
    b'"succeeded"',
    b"{",
    b'{"outcome": null}',
    b'{"outcome": ["succeeded"]}',
    b'{"outcome": {"a": 1}}',
    b'{"outcome": "succeeded", "message": null}',
    b'{"outcome": "succeeded", "message": "\\u0000"}',
    b'{"outcome": "succeeded", "message": "\\ud800"}',
    b'{"outcome": "retry_later", "retry_after_seconds": 1e400}',
    b'{"outcome": "retry_later", "retry_after_seconds": 99999999999999999999999999}',
    b'{"outcome": "retry_later", "retry_after_seconds": -1}',
    b'{"outcome": "retry_later", "retry_after_seconds": NaN}',
    b"\xff\xfe",
    b'{"outcome": "succeeded"' + b", " * 10 + b"}",
]


@pytest.mark.parametrize("body", BAD_BODIES)
def test_a_bad_input_corpus_never_answers_5xx(setup, body):
    agent, command = setup["agent"], setup["command"]

    for url in (result_url(command), ack_url(command)):
        response = agent.generic("POST", url, body, content_type="application/json")
        assert response.status_code < 500, (url, body, response.content[:300])
        if response.status_code >= 400:
            assert response["Content-Type"] == PROBLEM


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/agent/commands/abc/ack/",
        "/api/v1/agent/commands/-1/ack/",
        "/api/v1/agent/commands/99999999999999999999999/result/",
        "/api/v1/agent/commands/1/",
        "/api/v1/agent/nope/",
    ],
)
def test_odd_paths_are_problem_details_never_5xx(setup, path):
    response = setup["agent"].post(path, {"outcome": "succeeded"}, format="json")
    assert 400 <= response.status_code < 500
    assert response["Content-Type"] == PROBLEM


def test_wrong_methods_are_405(setup):
    assert_problem(setup["agent"].post(COMMANDS), 405, "method_not_allowed")
    assert_problem(setup["agent"].get(ack_url(setup["command"])), 405, "method_not_allowed")


# ---------------------------------------------------------------------------------------------
# Credentials


def test_no_credentials_is_401_with_a_bearer_challenge():
    response = APIClient().get(COMMANDS)
    assert_problem(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "header",
    ["Bearer nope", "Bearer nfa_" + "a" * 43, "Token nfa_x", "Basic dXNlcjpwdw==", "Bearer", "Bearer a b"],
)
def test_bad_agent_credentials_are_401(setup, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    assert_problem(client.get(COMMANDS), 401, "not_authenticated")


def test_a_user_token_or_session_opens_no_agent_endpoint(setup, as_role):
    superuser = UserFactory(is_superuser=True, is_staff=True)
    token_user = as_role("admin")
    key = token_user._credentials["HTTP_AUTHORIZATION"].split()[1]
    bearer_user = APIClient()
    bearer_user.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    session = APIClient()
    session.force_login(superuser)

    for client in (token_user, bearer_user, session):
        assert client.get(COMMANDS).status_code in (401, 403)
        assert client.post(ack_url(setup["command"])).status_code in (401, 403)
        response = client.post(result_url(setup["command"]), {"outcome": "succeeded"}, format="json")
        assert response.status_code in (401, 403)
    setup["command"].refresh_from_db()
    assert setup["command"].status == "pending"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/nodes/"),
        ("get", "/api/v1/hosts/"),
        ("post", "/api/v1/nodes/"),
        ("post", "/api/v1/commands/{command}/cancel/"),
    ],
)
def test_an_agent_token_opens_nothing_outside_the_agent_endpoints(setup, method, path):
    response = getattr(setup["agent"], method)(path.format(command=setup["command"].pk), {}, format="json")
    assert response.status_code in (401, 403)
    setup["command"].refresh_from_db()
    assert setup["command"].status == "pending"


def test_rotation_revokes_the_old_token(setup):
    host = setup["host"]
    old = APIClient()
    old.credentials(HTTP_AUTHORIZATION=f"Bearer {agent_token_issue(host=host, rotate=True)}")
    assert old.get(COMMANDS).status_code == 200

    new_token = agent_token_issue(host=host, rotate=True)

    assert_problem(old.get(COMMANDS), 401, "not_authenticated")
    new = APIClient()
    new.credentials(HTTP_AUTHORIZATION=f"Bearer {new_token}")
    assert new.get(COMMANDS).status_code == 200
    host.refresh_from_db()
    assert new_token not in str(Host.objects.filter(pk=host.pk).values().get())  # only its digest is stored


# ---------------------------------------------------------------------------------------------
# Cancel (support)


def test_cancel_needs_the_permission_and_answers_the_command(setup, as_role):
    command = setup["command"]
    url = f"/api/v1/commands/{command.pk}/cancel/"
    canceller = APIClient()
    canceller.force_authenticate(UserFactory(permissions=["nodes.cancel_command"]))

    assert_problem(APIClient().post(url), 401, "not_authenticated")
    assert_problem(as_role("admin").post(url), 403, "permission_denied")
    response = canceller.post(url)
    assert (response.status_code, response.json()["status"]) == (200, "cancelled")
    assert assert_problem(canceller.post(url), 409, "invalid_state")["state"] == "cancelled"
    assert_problem(canceller.post("/api/v1/commands/999999999/cancel/"), 404, "not_found")
    assert_problem(canceller.post(url, {"why": "x"}, format="json"), 400, "invalid")


# ---------------------------------------------------------------------------------------------
# manage.py agent_token


@pytest.mark.django_db(transaction=True)
def test_agent_token_prints_the_token_once_refuses_a_second_and_rotates():
    host = HostFactory(name="host-cli")

    issued = manage("agent_token", "host-cli")
    again = manage("agent_token", str(host.pk))
    rotated = manage("agent_token", "host-cli", "--rotate")
    unknown = manage("agent_token", "no-such-host")
    usage = manage("agent_token")

    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip().splitlines()[-1]
    assert token.startswith("nfa_") and len(token) == 47
    assert (again.returncode, unknown.returncode, usage.returncode) == (1, 1, 2)
    assert "already has an agent token" in again.stderr
    new_token = rotated.stdout.strip().splitlines()[-1]
    assert rotated.returncode == 0 and new_token != token
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.get(COMMANDS).status_code == 401
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {new_token}")
    assert client.get(COMMANDS).status_code == 200
