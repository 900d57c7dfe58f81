"""Images (and hosts) changed or deleted while a node is placed on them or moved to them, on
PostgreSQL with real commits: the competing change runs in another session exactly inside the
service's transaction (RunBefore-style), and either waits for it or is refused; nothing answers 500 and
no node runs on requirements that changed under it."""

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, connections

import hosts.repair
import nodes.changes.create
import nodes.changes.upgrade
from hosts.models import Host
from hosts.repair import host_counters_repair
from nodes.audit import node_allocation_findings
from nodes.changes import node_create, node_upgrade
from nodes.models import Image, Node
from tests.factories import GiB, HostFactory, ImageFactory, place_node
from tests.invariants import assert_counters_exact

pytestmark = pytest.mark.django_db(transaction=True)


class Competitor:
    """Runs `work` in another thread (its own session) and waits until it has finished or is
    waiting for a row lock, so the caller goes on with the competitor blocked behind it."""

    def __init__(self, work):
        self.work, self.error, self.done = work, None, threading.Event()
        self.thread = threading.Thread(target=self._run)

    def _run(self):
        try:
            self.work()
        except Exception as error:  # asserted by the test
            self.error = error
        finally:
            connection.close()
            self.done.set()

    def start_and_wait_until_blocked_or_done(self):
        self.thread.start()
        observer = connections.create_connection("default")
        try:
            for _ in range(500):
                if self.done.wait(0.01):
                    return
                with observer.cursor() as cursor:
                    cursor.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND wait_event_type = 'Lock'"
                    )
                    if cursor.fetchone()[0]:
                        return
            raise AssertionError("the competitor neither finished nor waited for a lock")
        finally:
            observer.close()

    def join(self):
        self.thread.join(30)
        assert self.done.is_set()


def compete_inside(monkeypatch, module, name, work) -> Competitor:
    """Patches module.name so that `work` runs in another session the first time it is called."""
    original, competitor = getattr(module, name), Competitor(work)

    def patched(*args, **kwargs):
        if not competitor.thread.is_alive() and not competitor.done.is_set():
            competitor.start_and_wait_until_blocked_or_done()
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, patched)
    return competitor


def change_requirements(image_pk, **minimum):
    image = Image.objects.get(pk=image_pk)
    for field, value in minimum.items():
        setattr(image, field, value)
    image.save()


def test_requirements_changed_during_the_first_placement_wait_for_it_and_are_then_refused(monkeypatch):
    host = HostFactory()
    image = ImageFactory(min_cpu_cores=2, min_memory_bytes=8 * GiB)
    # Between reading the image and writing the node, support staff raise its requirements.
    competitor = compete_inside(
        monkeypatch, nodes.changes.create, "full_config", lambda: change_requirements(image.pk, min_cpu_cores=6)
    )

    node = node_create(name="first", host_id=host.pk, image_id=image.pk).node
    competitor.join()

    assert isinstance(competitor.error, ValidationError)
    assert "run by 1 node(s)" in str(competitor.error)
    assert Image.objects.get(pk=image.pk).min_cpu_cores == 2
    assert Node.objects.get(pk=node.pk).cpu_cores == 2
    assert list(node_allocation_findings()) == []
    assert_counters_exact()


def test_an_image_deleted_during_an_upgrade_to_it_waits_and_is_then_refused(monkeypatch):
    old, new = ImageFactory(protocol="ethereum"), ImageFactory(protocol="ethereum")
    node = place_node(host=HostFactory(), image=old)
    # Between the upgrade's locked read and its write (the counter deltas are computed first).
    competitor = compete_inside(
        monkeypatch, nodes.changes.upgrade, "host_counters_increments", lambda: Image.objects.get(pk=new.pk).delete()
    )

    node_upgrade(node_id=node.pk, image_id=new.pk)  # on today's main: IntegrityError at COMMIT (a 500)
    competitor.join()

    assert isinstance(competitor.error, ValidationError)
    assert Node.objects.get(pk=node.pk).image_id == new.pk
    assert Image.objects.filter(pk=new.pk).exists()


def test_an_image_deleted_during_a_create_on_it_waits_and_is_then_refused(monkeypatch):
    image = ImageFactory()
    competitor = compete_inside(
        monkeypatch, nodes.changes.create, "full_config", lambda: Image.objects.get(pk=image.pk).delete()
    )

    node_create(name="first", host_id=HostFactory().pk, image_id=image.pk)
    competitor.join()

    assert isinstance(competitor.error, ValidationError)
    assert Node.objects.filter(name="first", image=image).exists()


def test_a_repair_dry_run_reads_counters_and_nodes_from_one_moment(monkeypatch):
    host = HostFactory()
    image = ImageFactory()
    place_node(host=host, image=image)
    # Between the dry run's read of the counters and its read of the nodes, a node is placed
    # (counters and node committed together: the fleet is consistent at every commit).
    competitor = compete_inside(
        monkeypatch,
        hosts.repair,
        "host_truths",
        lambda: place_node(host=host, image=image, name="meanwhile"),
    )
    monkeypatch.setattr(hosts.repair, "host_drift_scan", lambda host_ids: iter([(host.pk, True)]))

    report = host_counters_repair(dry_run=True)
    competitor.join()

    assert competitor.error is None
    assert report.changes == []  # no phantom drift from reads of two moments
    assert_counters_exact()


def test_a_host_deleted_during_a_create_on_it_waits_and_is_then_refused(monkeypatch):
    host = HostFactory()
    delete_host = lambda: Host.objects.get(pk=host.pk).delete()  # noqa: E731
    competitor = compete_inside(monkeypatch, nodes.changes.create, "full_config", delete_host)

    node_create(name="first", host_id=host.pk, image_id=ImageFactory().pk)
    competitor.join()

    assert isinstance(competitor.error, ValidationError)
    assert "holds 1 node(s)" in str(competitor.error)
    assert Node.objects.filter(name="first", host=host).exists()
