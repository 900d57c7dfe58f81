"""The hot answers rendered without DRF (nodes.api.answers, nodes.agent.poll): the same JSON,
byte for byte once parsed, as the serializers that document them in the schema produce for the
same objects; and the poll served ahead of the middleware (AgentPollMiddleware), with the
headers and the refusals the whole stack and the DRF view give."""

import json

import pytest
from django.db import connection
from django.http import HttpResponse
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from rest_framework.renderers import JSONRenderer
from rest_framework.test import APIClient

from config.http.answers import json_answer
from hosts.models import Host
from nodes.agent.poll import poll_answer
from nodes.agent.serializers import AgentCommandListSerializer
from nodes.api.answers import host_answer, node_answer, upgrade_answer
from nodes.api.serializers import HostSerializer, NodeSerializer, UpgradeSerializer
from nodes.changes import node_upgrade
from nodes.models import Command, Node
from tests.api.conftest import agent_client, assert_problem
from tests.factories import HostFactory, ImageFactory, place_node

pytestmark = pytest.mark.django_db

COMMANDS = "/api/v1/agent/commands/"


def as_sent(data) -> object:
    """What a client reads: through orjson for the plain dicts, DRF's renderer for serializers."""
    return json.loads(json_answer(data).content)


def drf_sent(data) -> object:
    return json.loads(JSONRenderer().render(data))


def test_the_node_and_host_answers_are_the_serializers(fleet):
    legacy = place_node(host=fleet["host"], image=fleet["v1"], name="nœud-東京")
    Node.objects.filter(pk=legacy.pk).update(properties=None)  # a legacy row (ConfigField: nullable)
    for node in Node.objects.all():
        assert as_sent(node_answer(node)) == drf_sent(NodeSerializer(node).data)
    overcommitted = HostFactory(cpu_cores=1)
    Host.objects.filter(pk=overcommitted.pk).update(node_cpu_cores=3)  # free capacity negative
    for host in Host.objects.all():
        assert as_sent(host_answer(host)) == drf_sent(HostSerializer(host).data)


def test_the_upgrade_answer_is_the_serializers(fleet):
    outcome = node_upgrade(node_id=fleet["node"].pk, image_id=fleet["v2"].pk)

    sent = as_sent(upgrade_answer(outcome))

    assert sent == drf_sent(UpgradeSerializer(outcome).data)
    assert sent["upgrade"]["delta"]["cpu_cores"] == 2  # v1 -> v2: 2 -> 4 cores


def test_the_poll_answer_is_the_serializers(fleet):
    node_upgrade(node_id=fleet["node"].pk, image_id=fleet["v2"].pk)
    commands = list(Command.objects.filter(host_id=fleet["host"].pk).order_by("created_at", "id"))
    assert len(commands) == 3  # two creates, one upgrade

    sent = as_sent(poll_answer(commands))

    assert sent == drf_sent(AgentCommandListSerializer({"results": commands}).data)


def test_the_poll_is_served_ahead_of_the_middleware_with_one_statement():
    host = HostFactory()
    place_node(host=host, image=ImageFactory(), running=False)
    agent = agent_client(host)
    agent.get(COMMANDS)  # records the agent as seen (a second statement, once a minute)

    with CaptureQueriesContext(connection) as queries:
        response = agent.get(COMMANDS)

    assert response.status_code == 200
    assert type(response) is HttpResponse  # not DRF's Response: the middleware answered
    assert (response["Content-Type"], response["Allow"]) == ("application/json", "GET, HEAD, OPTIONS")
    assert [item["kind"] for item in response.json()["results"]] == ["node_create"]
    assert len(queries) == 1


@pytest.mark.parametrize("header", ["Bearer nope", "Bearer", "Token abc"])
def test_a_refused_token_on_the_plain_poll_is_the_drf_views_401(header):
    plain, drf = APIClient(), APIClient()
    plain.credentials(HTTP_AUTHORIZATION=header)
    drf.credentials(HTTP_AUTHORIZATION=header, HTTP_ACCEPT="application/json; q=0.9")  # handed to DRF

    answers = [assert_problem(client.get(COMMANDS), 401, "not_authenticated") for client in (plain, drf)]
    challenges = [client.get(COMMANDS)["WWW-Authenticate"] for client in (plain, drf)]

    assert answers[0] == answers[1]
    assert challenges == ['Bearer realm="agent"'] * 2


def test_what_the_plain_poll_does_not_take_goes_to_drf():
    agent = agent_client(HostFactory())

    assert_problem(agent.get(COMMANDS, HTTP_ACCEPT="text/html"), 406, "not_acceptable")
    assert_problem(agent.post(COMMANDS), 405, "method_not_allowed")
    assert agent.options(COMMANDS).status_code == 200
    assert_problem(APIClient().get(COMMANDS), 401, "not_authenticated")


def _headers(response) -> dict[str, object]:
    headers = {name: value for name, value in response.headers.items() if name != "X-Request-ID"}
    headers["Content-Security-Policy"] = set(headers["Content-Security-Policy"].split("; "))
    return headers


@pytest.mark.parametrize("secure", [False, True])
def test_the_fast_poll_carries_the_headers_the_whole_stack_gives(secure):
    agent = agent_client(HostFactory())
    fast = agent.get(COMMANDS, secure=secure)
    stack = agent.get(COMMANDS, secure=secure, HTTP_ACCEPT="application/json; q=0.9")  # through DRF

    assert type(fast) is HttpResponse and type(stack) is not HttpResponse
    assert fast.content == stack.content == b'{"results":[]}'
    assert _headers(fast) == _headers(stack)
    assert ("Strict-Transport-Security" in fast.headers) is secure
    assert fast["X-Request-ID"]


def test_the_fast_poll_follows_a_changed_setting():
    agent = agent_client(HostFactory())
    assert agent.get(COMMANDS)["X-Frame-Options"] == "DENY"

    with override_settings(X_FRAME_OPTIONS="SAMEORIGIN"):
        assert agent.get(COMMANDS)["X-Frame-Options"] == "SAMEORIGIN"
    assert agent.get(COMMANDS)["X-Frame-Options"] == "DENY"


def test_a_poll_the_host_check_or_the_tls_redirect_refuses_goes_down_the_stack():
    assert agent_client(HostFactory()).get(COMMANDS, HTTP_HOST="evil.example").status_code == 400
    with override_settings(SECURE_SSL_REDIRECT=True):  # a new client: its middleware read the setting
        redirected = agent_client(HostFactory()).get(COMMANDS)
    assert (redirected.status_code, redirected["Location"]) == (301, f"https://testserver{COMMANDS}")
