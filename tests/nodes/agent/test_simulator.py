"""The simulated agents' client (nodes/agent/simulator.py) against a scripted HTTP server: the
protocol steps, the outcome draw, and politeness (Retry-After, dropping closed commands). No
database: the simulator speaks HTTP only."""

import json
import random
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from django.core.management import CommandError, call_command

from nodes.agent.simulator import AgentFleet, Behaviour, ServerPause, SimulatedAgent, TokenRefused
from tests.support import manage

UPGRADE = {"id": 7, "kind": "node_upgrade", "node_id": "n-1", "payload": {}, "status": "pending", "attempts": 0}


class ScriptedAgentServer:
    """/api/v1/agent/ as a script: `commands` is what the poll lists; `answers` maps
    (method, path) to a forced (status, body, headers); every request is recorded."""

    def __init__(self):
        self.commands: list[dict] = []
        self.answers: dict = {}
        self.requests: list[tuple[str, str, dict | None, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, method):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                server.requests.append((method, self.path, body, self.headers.get("Authorization", "")))
                status, payload, headers = server.answers.get((method, self.path), (None, None, {}))
                if status is None:
                    status, payload = server.default(method, self.path, body)
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._answer("GET")

            def do_POST(self):
                self._answer("POST")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def default(self, method, path, body):
        """Acks move a command to acked; results close it (it leaves the poll's list)."""
        if method == "GET":
            return 200, self.commands
        command_id = int(path.split("/")[-3])
        command = next(c for c in self.commands if c["id"] == command_id)
        if path.endswith("/ack/"):
            command["status"] = "acked"
        else:
            self.commands.remove(command)
        return 200, command

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    scripted = ScriptedAgentServer()
    yield scripted
    scripted.close()


def agent(server, behaviour: Behaviour | None = None, seed=1) -> SimulatedAgent:
    behaviour = behaviour or Behaviour()
    return SimulatedAgent(host_name="h1", token="tok-1", base_url=server.url + "/", behaviour=behaviour, seed=seed)


def test_a_pending_command_is_acked_then_reported_on_the_next_poll(server):
    server.commands = [dict(UPGRADE)]
    simulated, tally, said = agent(server, Behaviour(rollback_rate=1.0)), Counter(), []
    session = requests.Session()

    simulated.step(session, tally, said.append)
    simulated.step(session, tally, said.append)
    simulated.step(session, tally, said.append)

    assert [(method, path, body) for method, path, body, _ in server.requests] == [
        ("GET", "/api/v1/agent/commands/", None),
        ("POST", "/api/v1/agent/commands/7/ack/", None),
        ("GET", "/api/v1/agent/commands/", None),
        (
            "POST",
            "/api/v1/agent/commands/7/result/",
            {
                "outcome": "rolled_back",
                "message": "simulated: the new image did not start; rolled back to the previous image",
            },
        ),
        ("GET", "/api/v1/agent/commands/", None),
    ]
    assert {auth for *_, auth in server.requests} == {"Bearer tok-1"}
    assert tally == Counter(polls=3, acked=1, rolled_back=1)
    assert said == ["h1: acked node_upgrade of node n-1", "h1: node_upgrade of node n-1 -> rolled_back"]


def test_a_command_closed_by_someone_else_is_dropped_not_retried(server):
    server.commands = [dict(UPGRADE)]
    server.answers[("POST", "/api/v1/agent/commands/7/ack/")] = (409, {"code": "command_closed"}, {})
    simulated, tally, said = agent(server), Counter(), []

    simulated.step(requests.Session(), tally, said.append)

    assert tally["dropped"] == 1 and tally["acked"] == 0
    assert said == ["h1: node_upgrade of node n-1 dropped: 409 command_closed"]
    assert simulated.working == {}


def test_busy_and_throttled_answers_pause_for_retry_after(server):
    for status in (503, 429):
        server.answers[("GET", "/api/v1/agent/commands/")] = (status, {"code": "busy"}, {"Retry-After": "7"})
        with pytest.raises(ServerPause) as paused:
            agent(server).step(requests.Session(), Counter(), print)
        assert paused.value.seconds == 7


def test_a_poll_answered_without_json_pauses_the_agent_instead_of_ending_it(server):
    server.answers[("GET", "/api/v1/agent/commands/")] = (200, b"<html>reloading</html>", {})
    simulated = agent(server)
    fleet = AgentFleet([simulated], interval=0.01, say=lambda line: None)
    tally = Counter()

    assert fleet._next_pause(simulated, requests.Session(), tally) > 0
    assert tally["server_pauses"] == 1


def test_a_refused_token_and_an_unreachable_server_are_told_apart(server):
    server.answers[("GET", "/api/v1/agent/commands/")] = (401, {"code": "not_authenticated"}, {})
    with pytest.raises(TokenRefused):
        agent(server).step(requests.Session(), Counter(), print)

    gone = SimulatedAgent(host_name="h1", token="t", base_url="http://127.0.0.1:9", behaviour=Behaviour())
    with pytest.raises(ServerPause) as paused:
        gone.step(requests.Session(), Counter(), print)
    assert paused.value.seconds is None  # no Retry-After: the fleet backs off by itself


def test_the_fleet_backs_off_from_an_unreachable_server_and_stops_on_request():
    stop = threading.Event()
    gone = SimulatedAgent(host_name="h1", token="t", base_url="http://127.0.0.1:9", behaviour=Behaviour())
    fleet = AgentFleet([gone], interval=0.01, workers=4, say=lambda line: None, stop=stop)
    pauses = [fleet._next_pause(gone, requests.Session(), Counter()) for _ in range(6)]
    assert pauses == sorted(pauses) and pauses[-1] > pauses[0]  # growing, to MAX_BACKOFF at most

    stop.set()
    assert fleet.run()["polls"] == 0


@pytest.mark.parametrize(
    ("kind", "rates", "outcome"),
    [
        ("node_upgrade", {}, "succeeded"),
        ("node_upgrade", {"fail_rate": 1.0}, "failed"),
        ("node_upgrade", {"rollback_rate": 1.0}, "rolled_back"),
        ("node_create", {"rollback_rate": 1.0}, "succeeded"),  # a create has no rollback
        ("node_create", {"fail_rate": 1.0}, "failed"),
        ("node_delete", {"fail_rate": 1.0}, "failed"),
        ("node_delete", {"retry_rate": 1.0}, "retry_later"),
    ],
)
def test_outcomes_follow_the_rates_and_the_kind(kind, rates, outcome):
    assert Behaviour(**rates).outcome(kind, 0, random.Random(0)) == outcome


def test_retry_later_stops_after_max_retries_and_carries_its_seconds():
    behaviour = Behaviour(retry_rate=1.0, retry_after_seconds=3)
    assert behaviour.outcome("node_create", 2, random.Random(0)) == "succeeded"
    assert behaviour.report("node_create", "retry_later") == {
        "outcome": "retry_later",
        "retry_after_seconds": 3,
        "message": "simulated: host busy, try again later",
    }
    assert behaviour.report("node_create", "succeeded") == {"outcome": "succeeded"}


def test_a_seeded_host_draws_the_same_outcomes_every_run():
    behaviour = Behaviour(fail_rate=0.3, rollback_rate=0.3)

    def draws(host, seed):
        simulated = SimulatedAgent(host_name=host, token="t", base_url="http://x", behaviour=behaviour, seed=seed)
        return [behaviour.outcome("node_upgrade", 0, simulated.rng) for _ in range(30)]

    assert draws("h1", 5) == draws("h1", 5)
    assert draws("h1", 5) != draws("h2", 5)
    assert set(draws("h1", 5)) == {"succeeded", "failed", "rolled_back"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--host", "no-such-host"], 2),
        (["--fail-rate", "0.7", "--rollback-rate", "0.7"], 2),
        ([], 1),  # no host at all
    ],
)
def test_simulate_agents_refuses_bad_usage_before_touching_any_token(args, code):
    with pytest.raises(CommandError) as refused:
        call_command("simulate_agents", "--url", "http://127.0.0.1:9", *args)
    assert refused.value.returncode == code


@pytest.mark.django_db(transaction=True)
def test_simulate_agents_bad_rates_and_intervals_are_usage_errors_from_a_shell():
    rate = manage("simulate_agents", "--fail-rate", "1.5")
    interval = manage("simulate_agents", "--interval", "0")

    assert (rate.returncode, interval.returncode) == (2, 2)
    assert "'1.5' is not a probability between 0 and 1" in rate.stderr
    assert "'0' is not a number of seconds above 0" in interval.stderr
