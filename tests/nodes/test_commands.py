"""upgrade_node and seed_demo as an operator runs them."""

import io
import os
import subprocess
import sys

import pytest
from django.core.management import CommandError, call_command

from hosts.models import Host
from nodes.models import Node, NodeLog
from tests.factories import GiB, HostFactory, ImageFactory, place_node
from tests.invariants import assert_counters_exact
from tests.support import ROOT, manage


@pytest.mark.django_db(transaction=True)
def test_upgrade_node_from_a_shell_exits_0_1_and_2():
    host = HostFactory(cpu_cores=8)
    old = ImageFactory(protocol="ethereum", version="1.0")
    new = ImageFactory(protocol="ethereum", version="2.0", min_cpu_cores=4, min_memory_bytes=16 * GiB)
    ImageFactory(protocol="ethereum", version="9.0", min_cpu_cores=64)
    node = place_node(host=host, image=old, name="eth-a")

    plan = manage("upgrade_node", "eth-a", "ethereum@2.0", "--dry-run")
    assert (plan.returncode, Node.objects.get(pk=node.pk).image_id) == (0, old.pk)
    assert "Would apply: yes." in plan.stdout and "8.0 GiB -> 16.0 GiB" in plan.stdout

    done = manage("upgrade_node", str(node.pk), str(new.pk))
    assert done.returncode == 0, done.stderr
    assert "ethereum@1.0 -> ethereum@2.0" in done.stdout
    assert NodeLog.objects.get(event="upgrade_started").source == "cli"

    refused = manage("upgrade_node", "eth-a", "ethereum@9.0")
    assert refused.returncode == 1
    assert "not enough CPU" in refused.stderr and "Traceback" not in refused.stderr

    would_refuse = manage("upgrade_node", "eth-a", "ethereum@9.0", "--dry-run")
    assert (
        would_refuse.returncode == 1
        and "Would apply: no. Applying it would be refused: not enough CPU" in would_refuse.stdout
    )

    unneeded = manage("upgrade_node", "eth-a", "ethereum@1.0", "--force")
    assert unneeded.returncode == 0 and "(--force not needed: it fits)" in unneeded.stdout

    forced = manage("upgrade_node", "eth-a", "ethereum@9.0", "--force")
    assert forced.returncode == 0 and "(forced)" in forced.stdout
    assert NodeLog.objects.filter(forced=True).count() == 1

    assert manage("upgrade_node", "eth-a").returncode == 2  # usage error
    assert_counters_exact()


@pytest.mark.django_db
def test_upgrade_node_dry_run_says_would_apply_no_and_claims_no_fit_for_another_protocol():
    place_node(host=HostFactory(), image=ImageFactory(protocol="ethereum", version="1.0"), name="eth-a")
    ImageFactory(protocol="bitcoin", version="27.0")
    out = io.StringIO()

    with pytest.raises(CommandError) as caught:
        call_command("upgrade_node", "eth-a", "bitcoin@27.0", "--dry-run", stdout=out)

    assert caught.value.returncode == 1
    text = out.getvalue()
    assert "no allocation on bitcoin@27.0 can be computed (incompatible_image)" in text
    assert "fits" not in text.replace("Would apply", "") and "->" not in text.split("\n", 1)[1]
    assert text.splitlines()[-1].startswith("Would apply: no. Applying it would be refused: Node eth-a runs")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("node", "image", "message"),
    [("nope", "ethereum@2.0", "No node"), ("eth-a", "ethereum@7.7", "No image"), ("eth-a", "ethereum@1.0", "already")],
)
def test_upgrade_node_refusals_show_the_services_detail(node, image, message):
    place_node(host=HostFactory(), image=ImageFactory(protocol="ethereum", version="1.0"), name="eth-a")
    ImageFactory(protocol="ethereum", version="2.0")
    with pytest.raises(CommandError, match=message) as caught:
        call_command("upgrade_node", node, image)
    assert caught.value.returncode == 1


@pytest.mark.django_db
def test_upgrade_node_finds_a_node_whose_name_reads_as_a_uuid():
    v1 = ImageFactory(protocol="ethereum", version="1.0")
    ImageFactory(protocol="ethereum", version="2.0")
    name = "0b9d4c36-1a6e-4c4a-9d59-5a3c2f7e8b10"
    node = place_node(host=HostFactory(), image=v1, name=name)

    call_command("upgrade_node", name, "ethereum@2.0", stdout=(out := io.StringIO()))

    assert f"Upgraded: {name} on" in out.getvalue()
    assert Node.objects.get(pk=node.pk).image.version == "2.0"


@pytest.mark.django_db
def test_upgrade_node_by_id_prefers_the_node_with_that_id_to_one_named_like_it():
    v1 = ImageFactory(protocol="ethereum", version="1.0")
    ImageFactory(protocol="ethereum", version="2.0")
    host = HostFactory()
    target = place_node(host=host, image=v1, name="target")
    place_node(host=host, image=v1, name=str(target.pk))  # another node named with target's id

    call_command("upgrade_node", str(target.pk), "ethereum@2.0", stdout=(out := io.StringIO()))

    assert "Upgraded: target on" in out.getvalue()


@pytest.mark.django_db
def test_upgrade_node_escapes_control_characters_of_stored_names():
    v1 = ImageFactory(protocol="ethereum", version="1.0")
    ImageFactory(protocol="ethereum", version="2.0")
    node = place_node(host=HostFactory(name="h1"), image=v1, name="eth-1")
    Node.objects.filter(pk=node.pk).update(name="eth-1\nUpgraded: forged\x1b[2K")  # written around the app

    call_command("upgrade_node", str(node.pk), "ethereum@2.0", stdout=(out := io.StringIO()))

    lines = out.getvalue().splitlines()
    assert lines[0] == "Upgraded: eth-1\\nUpgraded: forged\\x1b[2K on h1: ethereum@1.0 -> ethereum@2.0"
    assert "\x1b" not in out.getvalue()


@pytest.mark.django_db
def test_seed_demo_is_idempotent_with_consistent_counters(capsys):
    call_command("seed_demo", hosts=5, nodes_per_host=4)
    first = (Host.objects.count(), Node.objects.count())
    call_command("seed_demo", hosts=5, nodes_per_host=4)
    call_command("seed_demo", hosts=6, nodes_per_host=4)

    assert first == (5, 20)
    assert (Host.objects.count(), Node.objects.count()) == (6, 24)
    assert "0 host(s) and 0 node(s) created" in capsys.readouterr().out
    assert_counters_exact()
    for node in Node.objects.select_related("image").prefetch_related("image__properties"):
        assert set(node.properties) == {prop.key for prop in node.image.properties.all()}


def test_the_quick_start_database_sqlite_seeds_and_upgrades(tmp_path):
    """`make run` serves SQLite: the same commands must work there (the suite itself needs PostgreSQL)."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "1",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'quickstart.sqlite3'}",
    }

    def run(*args):
        result = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    run("migrate", "--no-input", "-v", "0")
    run("seed_demo", "--hosts", "2", "--nodes-per-host", "3")
    pick = (
        "from nodes.models import Image, Node; n = Node.objects.filter(image__protocol='ethereum').first();"
        "i = Image.objects.filter(protocol='ethereum').exclude(pk=n.image_id).first(); print(n.name, i)"
    )
    node, image = run("shell", "-c", pick).strip().splitlines()[-1].split()
    assert "Would apply: yes." in run("upgrade_node", node, image, "--dry-run")
    assert f"-> {image}" in run("upgrade_node", node, image, "--force")
    audit = subprocess.run(
        [sys.executable, "manage.py", "audit_resources"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert audit.returncode == 0, audit.stdout + audit.stderr

    drift = f"from nodes.models import Node; Node.objects.filter(name={node!r}).update(cpu_cores=99)"
    run("shell", "-c", drift)  # a write around the application
    audit = subprocess.run(
        [sys.executable, "manage.py", "audit_resources"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert audit.returncode == 1, audit.stdout + audit.stderr
    assert node in audit.stdout and "cpu_cores" in audit.stdout
