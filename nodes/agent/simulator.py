"""Simulated host agents (`manage.py simulate_agents`, SPEC §9): real HTTP clients of the agent
endpoints, for the demo and for end-to-end tests. No database here: each agent knows only its
base URL, its host's name and its token, as a real agent would.

An agent polls `GET /api/v1/agent/commands/` every `interval` seconds. A `pending` command is
acked; on a later poll (the host "worked" on it meanwhile) its outcome is reported, drawn at
random by the configured rates from a generator seeded per host, so a seeded run repeats.
Politeness: 429/503 wait `Retry-After`; a server that does not answer is retried with a
growing pause (at most MAX_BACKOFF); a command the server closed meanwhile (404, 409) is
dropped; the agent never sends faster than its interval."""

import logging
import random
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import requests

logger = logging.getLogger("nodes.simulator")

#: Longest pause between two tries at a server that does not answer, seconds.
MAX_BACKOFF = 30.0
#: A command is not asked to retry_later more often than this (its attempts).
MAX_RETRIES = 2
REQUEST_TIMEOUT = 10.0

#: What a simulated host says when a change did not go through.
FAILURE_MESSAGES = {
    "node_create": "simulated: the node's VM did not start",
    "node_upgrade": "simulated: the new image did not start",
    "node_delete": "simulated: the node's disk could not be removed",
}
ROLLBACK_MESSAGE = "simulated: the new image did not start; rolled back to the previous image"
RETRY_MESSAGE = "simulated: host busy, try again later"


@dataclass(frozen=True)
class Behaviour:
    """How the simulated hosts answer: each rate is a probability per command (0..1)."""

    fail_rate: float = 0.0
    rollback_rate: float = 0.0
    retry_rate: float = 0.0
    retry_after_seconds: int = 1

    def outcome(self, kind: str, attempts: int, rng: random.Random) -> str:
        draw = rng.random()
        if attempts < MAX_RETRIES and draw < self.retry_rate:
            return "retry_later"
        draw = rng.random()
        rollback_rate = self.rollback_rate if kind == "node_upgrade" else 0.0
        if draw < rollback_rate:
            return "rolled_back"
        if draw < rollback_rate + self.fail_rate:
            return "failed"
        return "succeeded"

    def report(self, kind: str, outcome: str) -> dict:
        """The body of the result request for `outcome`."""
        body = {"outcome": outcome}
        if outcome == "retry_later":
            body |= {"retry_after_seconds": self.retry_after_seconds, "message": RETRY_MESSAGE}
        elif outcome == "rolled_back":
            body["message"] = ROLLBACK_MESSAGE
        elif outcome == "failed":
            body["message"] = FAILURE_MESSAGES.get(kind, "simulated failure")
        return body


class ServerPause(Exception):
    """The server asked to wait (429/503 with Retry-After) or did not answer."""

    def __init__(self, reason: str, seconds: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.seconds = seconds


class TokenRefused(Exception):
    """401/403: the token is no longer valid (rotated or revoked)."""


@dataclass
class SimulatedAgent:
    """One host's agent: its token, what it acked and is working on, its random generator."""

    host_name: str
    token: str
    base_url: str
    behaviour: Behaviour
    seed: int | None = None
    working: dict[str, str] = field(default_factory=dict)  # command id -> kind, acked by us
    backoff: float = 0.0
    rng: random.Random = field(init=False)

    def __post_init__(self):
        self.base_url = self.base_url.rstrip("/")
        # One generator per host, from the run's seed and the host's name: a seeded run draws
        # the same outcomes for the same host whatever the order the threads reach it.
        host_seed = zlib.crc32(self.host_name.encode())
        self.rng = random.Random(None if self.seed is None else self.seed * 1_000_003 + host_seed)

    # HTTP ---------------------------------------------------------------------------------

    def _request(self, session: requests.Session, method: str, path: str, body: dict | None = None):
        url = f"{self.base_url}/api/v1/agent/{path}"
        try:
            response = session.request(
                method,
                url,
                json=body,
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=REQUEST_TIMEOUT,
            )
        except requests.RequestException as error:
            raise ServerPause(f"{type(error).__name__}: {error}") from None
        if response.status_code in (429, 503) or response.status_code >= 500:
            retry_after = response.headers.get("Retry-After", "")
            seconds = float(retry_after) if retry_after.isdigit() else None
            raise ServerPause(f"{response.status_code} {_problem_code(response)}", seconds)
        if response.status_code in (401, 403):
            raise TokenRefused(f"{response.status_code} {_problem_code(response)}")
        return response

    # One round: poll, ack what is new, report what we worked on --------------------------

    def step(self, session: requests.Session, tally: Counter, say: Callable[[str], None]) -> None:
        """One poll and what follows from it. Raises ServerPause or TokenRefused."""
        response = self._request(session, "GET", "commands/")
        tally["polls"] += 1
        if response.status_code != 200:
            raise ServerPause(f"poll answered {response.status_code} {_problem_code(response)}")
        try:
            data = response.json()
        except ValueError:  # not JSON (a dev server reloading, a proxy's page): try again later
            raise ServerPause(f"poll answered {response.status_code} without JSON") from None
        commands = data.get("results", []) if isinstance(data, dict) else data
        seen = set()
        for command in commands:
            command_id = str(command["id"])
            seen.add(command_id)
            if command["status"] == "pending":
                self._ack(session, command, tally, say)
            elif command["status"] == "acked":
                # Ours from an earlier poll (work done now), or acked before a restart.
                self._report(session, command, tally, say)
        # Commands we worked on that the server no longer lists were closed by someone else
        # (cancelled, superseded by a delete): nothing left to report.
        for command_id in set(self.working) - seen:
            del self.working[command_id]

    def _ack(self, session, command: dict, tally: Counter, say) -> None:
        command_id = str(command["id"])
        response = self._request(session, "POST", f"commands/{command_id}/ack/")
        if response.status_code == 200:
            self.working[command_id] = command["kind"]
            tally["acked"] += 1
            say(f"{self.host_name}: acked {command['kind']} of node {command['node_id']}")
        else:
            self._dropped(command, response, tally, say)

    def _report(self, session, command: dict, tally: Counter, say) -> None:
        command_id, kind = str(command["id"]), command["kind"]
        outcome = self.behaviour.outcome(kind, command.get("attempts", 0), self.rng)
        body = self.behaviour.report(kind, outcome)
        response = self._request(session, "POST", f"commands/{command_id}/result/", body)
        self.working.pop(command_id, None)
        if response.status_code == 200:
            tally[outcome] += 1
            say(f"{self.host_name}: {kind} of node {command['node_id']} -> {outcome}")
        else:
            self._dropped(command, response, tally, say)

    def _dropped(self, command: dict, response, tally: Counter, say) -> None:
        """404 (gone), 409 (closed by someone else), 400 (a bug on one side): not retried."""
        tally["dropped"] += 1
        say(
            f"{self.host_name}: {command['kind']} of node {command['node_id']} dropped: "
            f"{response.status_code} {_problem_code(response)}"
        )


def _problem_code(response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.reason or ""
    return body.get("code", "") if isinstance(body, dict) else ""


class AgentFleet:
    """Runs agents on `workers` threads, each serving its share of hosts in turn. stop() (or
    the `stop` event) ends them after the request in flight; run() returns the tally."""

    def __init__(
        self,
        agents: list[SimulatedAgent],
        *,
        interval: float,
        workers: int = 8,
        say: Callable[[str], None] = print,
        stop: threading.Event | None = None,
    ):
        self.agents = agents
        self.interval = interval
        self.workers = max(1, min(workers, len(agents)))
        self.say = say
        self.stop = stop or threading.Event()
        self.tally = Counter()
        self._lock = threading.Lock()

    def run(self) -> Counter:
        threads = [
            threading.Thread(target=self._serve, args=(self.agents[index :: self.workers],), daemon=True)
            for index in range(self.workers)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                thread.join(timeout=0.5)
        return self.tally

    def _serve(self, agents: list[SimulatedAgent]) -> None:
        session = requests.Session()
        # Spread the first polls over one interval, so hosts do not all poll at the same instant.
        due = {id(agent): time.monotonic() + self.interval * index / len(agents) for index, agent in enumerate(agents)}
        tally = Counter()
        try:
            while not self.stop.is_set():
                agent = min(agents, key=lambda a: due[id(a)])
                if self.stop.wait(max(0.0, due[id(agent)] - time.monotonic())):
                    break
                due[id(agent)] = time.monotonic() + self._next_pause(agent, session, tally)
        finally:
            session.close()
            with self._lock:
                self.tally.update(tally)

    def _next_pause(self, agent: SimulatedAgent, session: requests.Session, tally: Counter) -> float:
        """Runs one step of `agent`; returns the seconds until its next one."""
        try:
            agent.step(session, tally, self.say)
        except ServerPause as pause:
            tally["server_pauses"] += 1
            agent.backoff = min(MAX_BACKOFF, max(self.interval, agent.backoff * 2))
            wait = pause.seconds if pause.seconds is not None else agent.backoff
            if agent.backoff <= self.interval or pause.seconds is not None:
                self.say(f"{agent.host_name}: server says {pause.reason}; next try in {wait:g} s")
            return wait
        except TokenRefused as refused:
            tally["token_refused"] += 1
            self.say(f"{agent.host_name}: token refused ({refused}); next try in {MAX_BACKOFF:g} s")
            return MAX_BACKOFF
        if agent.backoff:
            self.say(f"{agent.host_name}: server answers again")
            agent.backoff = 0.0
        return self.interval
