"""Repair while upgrades run, on PostgreSQL with real commits: threads each closing their own
connection. Afterwards the audit is clean and no upgrade is lost."""

import threading

import pytest
from django.db import connection

import hosts.repair
from hosts.audit import host_counter_findings
from hosts.models import CounterRepair, Host
from hosts.repair import host_counters_repair
from nodes.audit import node_allocation_findings
from nodes.changes import node_upgrade
from nodes.models import Node, NodeLog
from nodes.repair import node_allocations_repair
from tests.factories import GiB, HostFactory, TiB, place_node
from tests.hosts.drift import ethereum_image, set_counter, sql
from tests.invariants import assert_counters_exact


def in_threads(*works):
    """Runs each callable in its own thread, all released at once; each closes its connection.
    Returns the errors raised."""
    start = threading.Barrier(len(works))
    errors = []

    def run(work):
        try:
            start.wait()
            work()
        except Exception as error:  # collected and asserted by the caller
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(work,)) for work in works]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return errors


def roomy_host(name):
    return HostFactory(name=name, cpu_cores=10_000, memory_bytes=10_000 * GiB, disk_bytes=1000 * TiB)


@pytest.mark.django_db(transaction=True)
def test_repair_while_upgrades_run_loses_no_upgrade_and_ends_clean():
    small, large = ethereum_image("1.0"), ethereum_image("2.0", min_cpu_cores=4, min_memory_bytes=12 * GiB)
    hosts = [roomy_host(f"c{index}") for index in range(4)]
    nodes = [place_node(host=hosts[index % 4], image=small, name=f"c-node-{index:02d}") for index in range(24)]
    strays = [place_node(host=hosts[index], image=small, name=f"stray-{index}") for index in range(2)]
    repaired = threading.Event()
    upgraded = []  # (node pk, image pk, whether the repairs were over) of every committed upgrade

    def drift():
        set_counter(hosts[0], "node_cpu_cores", 7)
        set_counter(hosts[1], "node_memory_bytes", -GiB)
        set_counter(hosts[2], "node_count", 3)
        sql("UPDATE nodes_node SET cpu_cores = 9 WHERE name LIKE 'stray-%%'")  # off its image, counters left behind

    def upgrader(mine):
        def work():
            target, rounds_after_repair = large, 0
            while rounds_after_repair < 2:  # keep upgrading until the repairs are over, then twice more
                for node in mine:
                    node_upgrade(node_id=node.pk, image_id=target.pk)
                    upgraded.append((node.pk, target.pk, repaired.is_set()))
                target = small if target == large else large
                rounds_after_repair += repaired.is_set()

        return work

    def repairer():
        for _ in range(5):  # drift around the application, then repair, while upgrades run
            drift()
            node_allocations_repair()
            host_counters_repair(batch_size=1)
        repaired.set()

    errors = in_threads(repairer, *(upgrader(nodes[index::3]) for index in range(3)))

    assert errors == []
    assert_counters_exact()
    assert list(host_counter_findings()) == [] and list(node_allocation_findings()) == []
    last_image = {node_pk: image_pk for node_pk, image_pk, _after in upgraded}
    assert {node.pk: node.image_id for node in Node.objects.filter(name__startswith="c-node")} == last_image
    assert NodeLog.objects.filter(event="upgrade_started").count() == len(upgraded)
    assert sum(not after for _node, _image, after in upgraded) > 0  # some ran while the repairs did
    assert {repair.host.name for repair in CounterRepair.objects.all()} >= {"c0", "c1", "c2"}
    assert {log.node_name for log in NodeLog.objects.filter(event="allocation_repaired")} == {s.name for s in strays}


@pytest.mark.django_db(transaction=True)
def test_an_upgrade_racing_a_repair_batch_waits_for_its_commit_and_is_kept(monkeypatch):
    """Deterministic: an upgrade on a host of the batch starts right after the repair has read
    the truth and before it writes. It must wait for the batch's lock, then apply its delta on
    top of the repaired counters."""
    small, large = ethereum_image("1.0"), ethereum_image("2.0", min_cpu_cores=4, min_memory_bytes=12 * GiB)
    host = roomy_host("race")
    node = place_node(host=host, image=small)
    place_node(host=host, image=small)
    set_counter(host, "node_cpu_cores", 5)
    competitor = threading.Thread(target=lambda: (node_upgrade(node_id=node.pk, image_id=large.pk), connection.close()))
    waited = []
    real_host_truths = hosts.repair.host_truths

    def truths_then_a_competing_upgrade(**kwargs):
        truths = real_host_truths(**kwargs)
        competitor.start()
        competitor.join(0.5)
        waited.append(competitor.is_alive())  # still blocked on the host's lock
        return truths

    monkeypatch.setattr(hosts.repair, "host_truths", truths_then_a_competing_upgrade)

    report = host_counters_repair()
    competitor.join(10)

    assert waited == [True]
    assert [(c.old["node_cpu_cores"], c.new["node_cpu_cores"]) for c in report.changes] == [(9, 4)]
    assert Node.objects.get(pk=node.pk).image_id == large.pk
    assert Host.objects.get(pk=host.pk).node_cpu_cores == 6  # 4 + the upgrade's +2
    assert_counters_exact()
