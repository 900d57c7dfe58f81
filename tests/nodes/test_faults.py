"""Faults: a process killed while it holds a host lock, a connection dropped mid-upgrade."""

import signal
import subprocess
import sys
import threading

import pytest
from django.db import connection, connections

from config.errors import Busy
from nodes.changes import node_upgrade
from nodes.models import Command, Node, NodeLog
from tests.factories import HostFactory, ImageFactory, place_node
from tests.invariants import assert_counters_exact
from tests.support import ROOT, fleet_snapshot, subprocess_env

pytestmark = pytest.mark.django_db(transaction=True)

# Runs an upgrade in a separate process that stops, forever, right after its writes (on
# PostgreSQL one statement after the locked read): it holds the node and host locks with a
# written but uncommitted transaction when the test kills it.
HANGING_UPGRADE = """
import sys, time, django
django.setup()
from django.db import connection
from nodes.changes import node_upgrade

def hang_after_counters(execute, sql, params, many, context):
    result = execute(sql, params, many, context)
    if 'UPDATE "hosts_host"' in sql:
        print("HOLDING", flush=True)
        time.sleep(600)
    return result

with connection.execute_wrapper(hang_after_counters):
    node_upgrade(node_id=sys.argv[1], image_id=sys.argv[2])
"""


def test_a_worker_killed_while_holding_a_host_lock_leaves_nothing_and_others_proceed():
    host = HostFactory()
    small, big = ImageFactory(min_cpu_cores=2), ImageFactory(min_cpu_cores=8)
    victim, other = place_node(host=host, image=small), place_node(host=host, image=small)
    before = fleet_snapshot()
    worker = subprocess.Popen(
        [sys.executable, "-c", HANGING_UPGRADE, str(victim.pk), str(big.pk)],
        cwd=ROOT,
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert worker.stdout.readline().strip() == "HOLDING"
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()

    node_upgrade(node_id=other.pk, image_id=big.pk)  # waits until PostgreSQL ends the dead transaction

    assert Node.objects.get(pk=victim.pk).image_id == small.pk  # nothing of the killed upgrade
    assert (NodeLog.objects.count(), Command.objects.count()) == (before["logs"] + 1, before["commands"] + 1)
    host.refresh_from_db()
    assert host.node_cpu_cores == 2 + 8
    assert_counters_exact()


def test_a_connection_dropped_mid_upgrade_is_busy_writes_nothing_and_a_retry_succeeds():
    host = HostFactory()
    small, big = ImageFactory(), ImageFactory(min_cpu_cores=8)
    node = place_node(host=host, image=small)
    before = fleet_snapshot()
    paused, go_on = threading.Event(), threading.Event()

    def pause_after_lock(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if "FOR NO KEY UPDATE" in sql:
            paused.set()
            go_on.wait(10)
        return result

    def drop_the_connection(pid):
        assert paused.wait(10)
        admin = connections.create_connection("default")
        try:
            with admin.cursor() as cursor:
                cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        finally:
            admin.close()
            go_on.set()

    connection.ensure_connection()
    killer = threading.Thread(target=drop_the_connection, args=(connection.connection.info.backend_pid,))
    killer.start()
    with connection.execute_wrapper(pause_after_lock), pytest.raises(Busy) as caught:
        node_upgrade(node_id=node.pk, image_id=big.pk)
    killer.join(10)

    assert caught.value.status == 503
    assert fleet_snapshot() == before
    node_upgrade(node_id=node.pk, image_id=big.pk)  # a retry on a fresh connection
    assert Node.objects.get(pk=node.pk).image_id == big.pk
    assert_counters_exact()
