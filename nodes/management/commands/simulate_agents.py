"""manage.py simulate_agents: simulated host agents for the demo (`make run`) and end-to-end
tests — real HTTP clients of /api/v1/agent/ (SPEC §9; nodes/agent/simulator.py).

Run beside the app (same database), it first issues a fresh agent token for every host it plays
(which revokes the host's previous token), then talks to the server over HTTP only. It stops
cleanly on SIGINT or SIGTERM (the request in flight ends first) and prints what it did.
Exit 0 when stopped, 1 when there is no host to play, 2 on a usage error (an unknown --host
included)."""

import argparse
import signal
import threading

import requests
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from config.errors import NotFound
from hosts.agent_tokens import agent_token_issue
from hosts.audit import hosts_by_id_or_name
from hosts.models import Host
from nodes.agent.simulator import AgentFleet, Behaviour, SimulatedAgent
from nodes.management.audit_cli import add_host_option

#: The outcome counts the closing summary lists, in this order.
TALLY_ORDER = ("polls", "acked", "succeeded", "failed", "rolled_back", "retry_later", "dropped")


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a probability between 0 and 1")
    return value


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds above 0")
    return value


class Command(BaseCommand):
    help = (
        "Simulated host agents: poll /api/v1/agent/commands/, ack, and report succeeded, failed or "
        "rolled_back at random by the given rates, until SIGINT/SIGTERM."
    )

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="the server's base URL")
        add_host_option(parser, "play this host's agent (repeatable; default: every host)")
        parser.add_argument("--interval", type=_positive, default=2.0, metavar="S", help="seconds between polls")
        parser.add_argument("--fail-rate", type=_rate, default=0.0, metavar="P", help="share of commands that fail")
        parser.add_argument(
            "--rollback-rate", type=_rate, default=0.0, metavar="P", help="share of upgrades rolled back"
        )
        parser.add_argument(
            "--retry-rate",
            type=_rate,
            default=0.0,
            metavar="P",
            help="share of reports that are retry_later (at most twice per command)",
        )
        parser.add_argument("--seed", type=int, default=None, help="seed of the outcomes (a seeded run repeats)")
        parser.add_argument("--workers", type=int, default=8, help="threads serving the hosts (default 8)")

    def handle(self, *args, url, hosts, interval, fail_rate, rollback_rate, retry_rate, seed, workers, **options):
        if fail_rate + rollback_rate > 1:
            raise CommandError("--fail-rate plus --rollback-rate must be at most 1.", returncode=2)
        if workers < 1:
            raise CommandError("--workers must be at least 1.", returncode=2)
        behaviour = Behaviour(
            fail_rate=fail_rate,
            rollback_rate=rollback_rate,
            retry_rate=retry_rate,
            retry_after_seconds=max(1, round(interval)),
        )
        tokens = self._issue_tokens(hosts)
        if not tokens:
            raise CommandError("No host to play: add hosts (e.g. manage.py seed_demo) first.", returncode=1)
        # From here on the agents speak HTTP only, as real ones do: no database connection left open.
        connections.close_all()

        stop = threading.Event()
        previous = {signum: signal.signal(signum, lambda *_: stop.set()) for signum in (signal.SIGINT, signal.SIGTERM)}
        lock = threading.Lock()

        def say(line: str) -> None:
            with lock:
                self.stdout.write(line)
                self.stdout.flush()

        try:
            say(
                f"Simulating {len(tokens)} agent(s) against {url}: poll every {interval:g} s, fail rate "
                f"{fail_rate:g}, rollback rate {rollback_rate:g}{f', retry rate {retry_rate:g}' if retry_rate else ''}"
                f"{f', seed {seed}' if seed is not None else ''}. Ctrl-C stops."
            )
            if not self._wait_for_server(url, stop, say):
                return
            agents = [
                SimulatedAgent(host_name=name, token=token, base_url=url, behaviour=behaviour, seed=seed)
                for name, token in tokens.items()
            ]
            tally = AgentFleet(agents, interval=interval, workers=workers, say=say, stop=stop).run()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        say("Stopped: " + ", ".join(f"{key} {tally[key]}" for key in TALLY_ORDER) + ".")

    def _issue_tokens(self, refs: list[str]) -> dict[str, str]:
        """host name -> a fresh agent token, for the hosts named (default: every host)."""
        try:
            hosts = hosts_by_id_or_name(refs) if refs else list(Host.objects.order_by("name"))
        except NotFound as error:
            raise CommandError(error.detail, returncode=2) from None
        return {host.name: agent_token_issue(host=host, rotate=True) for host in hosts}

    @staticmethod
    def _wait_for_server(url: str, stop: threading.Event, say) -> bool:
        """Waits until GET /healthz answers (make run starts the server beside us); False if stopped."""
        told = False
        while not stop.is_set():
            try:
                if requests.get(f"{url.rstrip('/')}/healthz", timeout=5).status_code == 200:
                    return True
            except requests.RequestException:
                pass
            if not told:
                say(f"Waiting for the server at {url} ...")
                told = True
            stop.wait(1.0)
        return False
