"""Concurrency on PostgreSQL with real commits: threads each with their own connection."""

import logging
import random
import threading
import time

import pytest
from django.db import connection

from config.errors import AlreadyOnImage
from hosts.models import Host
from nodes.changes import node_upgrade
from nodes.models import Node, NodeLog
from tests.factories import GiB, HostFactory, ImageFactory, place_node
from tests.invariants import assert_counters_exact
from tests.support import deadlock_partner


def in_threads(count, work):
    """Runs work(index) in `count` threads at once; each closes its own connection. Returns errors."""
    start = threading.Barrier(count)
    errors = []

    def run(index):
        try:
            start.wait()
            work(index)
        except Exception as error:  # collected and asserted by the caller
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return errors


def images_of_three_sizes():
    return [ImageFactory(min_cpu_cores=c, min_memory_bytes=c * GiB, min_disk_bytes=c * 10 * GiB) for c in (1, 4, 9)]


@pytest.mark.django_db(transaction=True)
def test_threads_upgrading_nodes_of_one_host_end_with_exact_counters():
    host = HostFactory(cpu_cores=10_000, memory_bytes=10_000 * GiB, disk_bytes=100_000 * GiB)
    images = images_of_three_sizes()
    nodes = [place_node(host=host, image=images[0]) for _ in range(8)]
    rounds = 12

    def work(index):
        rng = random.Random(index)
        current = images[0].pk
        for _ in range(rounds):
            target = rng.choice([image.pk for image in images if image.pk != current])
            node_upgrade(node_id=nodes[index].pk, image_id=target)
            current = target

    assert in_threads(8, work) == []
    assert NodeLog.objects.filter(event="upgrade_started").count() == 8 * rounds
    assert_counters_exact()
    host.refresh_from_db()
    assert host.node_count == 8


@pytest.mark.django_db(transaction=True)
def test_threads_upgrading_the_same_node_serialize():
    host = HostFactory(cpu_cores=10_000, memory_bytes=10_000 * GiB, disk_bytes=100_000 * GiB)
    images = images_of_three_sizes()
    node = place_node(host=host, image=images[0])
    outcomes = []

    def work(index):
        rng = random.Random(index)
        for _ in range(10):
            try:
                node_upgrade(node_id=node.pk, image_id=rng.choice(images).pk)
                outcomes.append("upgraded")
            except AlreadyOnImage:
                outcomes.append("already")

    assert in_threads(6, work) == []
    assert NodeLog.objects.filter(event="upgrade_started").count() == outcomes.count("upgraded") > 0
    assert_counters_exact()


@pytest.mark.django_db(transaction=True)
def test_a_competing_upgrade_injected_between_lock_and_write_waits_and_both_count():
    """Upgrade A takes its locks; exactly then upgrade B of another node of the same host starts.
    B must wait for A's commit (host lock), then apply its own delta on top of A's."""
    host = HostFactory(cpu_cores=1000)
    small, medium, large = images_of_three_sizes()
    node_a, node_b = place_node(host=host, image=small), place_node(host=host, image=small)
    b_done = threading.Event()
    b_errors = []
    observed = {}

    def upgrade_b():
        try:
            node_upgrade(node_id=node_b.pk, image_id=large.pk)
        except Exception as error:
            b_errors.append(error)
        finally:
            b_done.set()
            connection.close()

    def inject_after_lock(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if "FOR NO KEY UPDATE" in sql and "competitor" not in observed:
            observed["competitor"] = threading.Thread(target=upgrade_b)
            observed["competitor"].start()
            observed["b_finished_while_a_held_lock"] = b_done.wait(0.5)
        return result

    with connection.execute_wrapper(inject_after_lock):
        node_upgrade(node_id=node_a.pk, image_id=medium.pk)
    observed["competitor"].join(10)

    assert observed["b_finished_while_a_held_lock"] is False
    assert b_errors == []
    host.refresh_from_db()
    assert host.node_cpu_cores == 4 + 9
    assert_counters_exact()


@pytest.mark.django_db(transaction=True)
def test_a_deadlock_is_retried_inside_the_service(caplog):
    """Another transaction holds the host and then asks for the node the upgrade holds: PostgreSQL
    aborts the upgrade (deadlock_detected); the service retries it and succeeds."""
    host = HostFactory()
    small, medium, _ = images_of_three_sizes()
    node = place_node(host=host, image=small)
    holding_host = threading.Event()

    thread = threading.Thread(
        target=deadlock_partner, args=(("hosts_host", host.pk), ("nodes_node", node.pk), holding_host)
    )
    thread.start()
    assert holding_host.wait(5)
    with caplog.at_level(logging.INFO, logger="config.db"):
        node_upgrade(node_id=node.pk, image_id=medium.pk)
    thread.join(30)

    assert any("40P01" in record.getMessage() for record in caplog.records)
    assert Node.objects.get(pk=node.pk).image_id == medium.pk
    assert_counters_exact()


@pytest.mark.django_db
def test_the_host_lock_is_taken_before_the_counters_change(queries):
    host = HostFactory()
    small, medium, _ = images_of_three_sizes()
    node = place_node(host=host, image=small)

    with queries() as statements:
        node_upgrade(node_id=node.pk, image_id=medium.pk)

    lock = next(i for i, sql in enumerate(statements) if "FOR NO KEY UPDATE" in sql)
    assert "FROM nodes_node n JOIN hosts_host h ON h.id = n.host_id" in statements[lock]
    # node and host, one statement; the images shared (a concurrent delete or edit waits)
    assert statements[lock].endswith("FOR NO KEY UPDATE OF n, h FOR KEY SHARE OF i")
    # On PostgreSQL the counters' UPDATE is one part of the upgrade's single write statement.
    update = next(i for i, sql in enumerate(statements) if 'UPDATE "hosts_host"' in sql)
    assert lock < update
    assert '"node_cpu_cores" = "node_cpu_cores" + %s' in statements[update]  # a delta added in SQL, not a value
    writes = [i for i, sql in enumerate(statements) if sql.startswith(("UPDATE", "INSERT", "DELETE", "WITH"))]
    assert min(writes) > lock
    assert Host.objects.get(pk=host.pk).node_cpu_cores == 4


@pytest.mark.django_db(transaction=True)
def test_an_upgrade_that_waited_while_its_node_moved_to_another_image_reads_it_again():
    """B locks the node and moves it to `medium`; A (to `large`) waits for the lock meanwhile.
    When A gets the lock it must see the node on `medium` — the image B just set — not fail."""
    host = HostFactory(cpu_cores=1000)
    small, medium, large = images_of_three_sizes()
    node = place_node(host=host, image=small)
    b_locked, a_waiting = threading.Event(), threading.Event()
    results = {}

    def pause_after_lock(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if "FOR NO KEY UPDATE" in sql and not b_locked.is_set():
            b_locked.set()
            a_waiting.wait(10)
        return result

    def upgrade(label, image, wrapper=None):
        try:
            if wrapper:
                with connection.execute_wrapper(wrapper):
                    results[label] = node_upgrade(node_id=node.pk, image_id=image.pk)
            else:
                results[label] = node_upgrade(node_id=node.pk, image_id=image.pk)
        except Exception as error:
            results[label] = error
        finally:
            connection.close()

    b = threading.Thread(target=upgrade, args=("b", medium, pause_after_lock))
    b.start()
    assert b_locked.wait(10)
    a = threading.Thread(target=upgrade, args=("a", large))
    a.start()
    with connection.cursor() as cursor:
        for _ in range(500):
            cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
            if cursor.fetchone()[0]:
                break
            time.sleep(0.01)
    a_waiting.set()
    b.join(10)
    a.join(10)

    assert results["b"].to_image.id == medium.pk
    assert (results["a"].from_image.id, results["a"].to_image.id) == (medium.pk, large.pk)
    assert Node.objects.get(pk=node.pk).image_id == large.pk
    assert NodeLog.objects.filter(event="upgrade_started").order_by("id").last().old_image_id == medium.pk
    assert_counters_exact()
