"""End to end (SPEC §9): the app under gunicorn, `manage.py simulate_agents` in its own process
speaking HTTP to it. 50 upgrades, with failures, rollbacks and retry_later drawn by a seed: every
command closes, every node ends `running` or `failed`, a rolled-back node runs its old image
again, and the audit is clean."""

import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from django.core.management import call_command
from django.utils import timezone

from nodes.changes import node_upgrade
from nodes.models import Command, CommandKind, CommandStatus, Node, NodeLog, NodeState
from tests.api.gunicorn import gunicorn
from tests.factories import HostFactory, ImageFactory, place_node
from tests.invariants import assert_counters_exact
from tests.support import ROOT, subprocess_env

UPGRADES = 50
HOSTS = 5
#: The agents' pace: a poll every 0.2 s; all commands close within seconds.
INTERVAL = "0.2"
DEADLINE_SECONDS = 120


def open_commands() -> int:
    return Command.objects.filter(status__in=[CommandStatus.PENDING, CommandStatus.ACKED]).count()


def wait_until_all_commands_close(agents: subprocess.Popen) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while open_commands() and time.monotonic() < deadline and agents.poll() is None:
        time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_fifty_upgrades_under_gunicorn_and_simulated_agents_end_running_or_failed(tmp_path):
    old = ImageFactory(protocol="ethereum", version="1.0", min_cpu_cores=2)
    new = ImageFactory(protocol="ethereum", version="2.0", min_cpu_cores=3)
    hosts = [HostFactory(name=f"e2e-{index}") for index in range(HOSTS)]
    nodes = [place_node(host=hosts[index % HOSTS], image=old, name=f"eth-{index:02d}") for index in range(UPGRADES)]
    # The hosts ran the creates already (as the §9 migration takes old commands as done).
    Command.objects.update(status=CommandStatus.SUCCEEDED, finished_at=timezone.now())
    Node.objects.update(state=NodeState.RUNNING)
    for node in nodes:
        node_upgrade(node_id=node.pk, image_id=new.pk)

    with gunicorn(workers=2, log=tmp_path / "gunicorn.log") as base_url:
        agents = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "simulate_agents",
                f"--url={base_url}",
                f"--interval={INTERVAL}",
                "--fail-rate=0.2",
                "--rollback-rate=0.2",
                "--retry-rate=0.1",
                "--seed=7",
                *(f"--host={host.name}" for host in hosts),
            ],
            cwd=ROOT,
            env={**subprocess_env(), "LOG_LEVEL": "WARNING"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            wait_until_all_commands_close(agents)
        finally:
            agents.send_signal(signal.SIGTERM)
            output, _ = agents.communicate(timeout=30)

    assert agents.returncode == 0, output
    assert output.splitlines()[-1].startswith("Stopped: polls "), output
    assert open_commands() == 0, output
    upgrades = Counter(Command.objects.filter(kind=CommandKind.NODE_UPGRADE).values_list("status", flat=True))
    assert sum(upgrades.values()) == UPGRADES
    assert upgrades[CommandStatus.SUCCEEDED] and upgrades[CommandStatus.FAILED] and upgrades[CommandStatus.ROLLED_BACK]
    assert set(upgrades) == {CommandStatus.SUCCEEDED, CommandStatus.FAILED, CommandStatus.ROLLED_BACK}
    assert Command.objects.filter(kind=CommandKind.NODE_UPGRADE, attempts__gt=0).exists()  # some retry_later

    states = Counter(Node.objects.values_list("state", flat=True))
    assert set(states) <= {NodeState.RUNNING, NodeState.FAILED}
    assert states[NodeState.FAILED] == upgrades[CommandStatus.FAILED]
    rolled_back = Command.objects.filter(status=CommandStatus.ROLLED_BACK).values_list("node_id", flat=True)
    assert set(Node.objects.filter(pk__in=rolled_back).values_list("image_id", flat=True)) == {old.pk}
    assert NodeLog.objects.filter(event="upgrade_rolled_back").count() == upgrades[CommandStatus.ROLLED_BACK]
    assert_counters_exact()
    call_command("audit_resources")  # exit 0: no finding (CommandError otherwise), no overdue command
