"""host_counters_repair: counters set to the truth of their nodes, batch by batch, recorded."""

import pytest

from config.errors import ResourceOverflow
from config.units import BIGINT_MAX
from hosts.audit import host_counter_findings
from hosts.models import CounterRepair, Host
from hosts.repair import host_counters_repair
from tests.factories import GiB, HostFactory, UserFactory
from tests.hosts.drift import TRUTH, drifted_fleet, fleet, set_counter, sql
from tests.invariants import assert_counters_exact, counter_drift


def counters():
    return {host.name: host.counters() for host in Host.objects.all()}


@pytest.mark.django_db
def test_repair_fixes_exactly_the_drifted_hosts_and_records_each_change():
    expected = drifted_fleet()
    drifted = {name for name, *_ in expected}
    before = counters()
    operator = UserFactory()

    report = host_counters_repair(actor=operator, source="admin")

    assert_counters_exact()
    assert report.hosts_checked == 11
    assert {change.host_name for change in report.changes} == drifted
    assert {(c.host_name, field, c.old[field], c.new[field]) for c in report.changes for field in c.fields} == expected
    assert {change.host_name: change.old for change in report.changes} == {name: before[name] for name in drifted}
    after = counters()
    assert after["h09"] == before["h09"] == TRUTH
    assert after["empty"] == {"node_count": 0, "node_cpu_cores": 0, "node_memory_bytes": 0, "node_disk_bytes": 0}
    repairs = {repair.host.name: repair for repair in CounterRepair.objects.select_related("host")}
    assert set(repairs) == drifted
    h02 = repairs["h02"]
    assert (h02.old_node_cpu_cores, h02.new_node_cpu_cores, h02.old_node_count, h02.new_node_count) == (8, 5, 2, 2)
    assert (h02.actor, h02.source) == (operator, "admin")


@pytest.mark.django_db
def test_a_second_repair_changes_nothing():
    drifted_fleet()
    host_counters_repair()
    after_first = counters()

    report = host_counters_repair()

    assert report.changes == [] and report.hosts_checked == 11
    assert counters() == after_first
    assert CounterRepair.objects.count() == 9


@pytest.mark.django_db
def test_a_dry_run_lists_the_changes_and_writes_nothing():
    expected = drifted_fleet()
    before = counters()

    report = host_counters_repair(dry_run=True)

    assert report.dry_run
    assert {(c.host_name, field, c.old[field], c.new[field]) for c in report.changes for field in c.fields} == expected
    assert counters() == before
    assert CounterRepair.objects.count() == 0
    assert len(list(host_counter_findings())) == len(expected)


@pytest.mark.django_db
def test_repair_limited_to_some_hosts_leaves_the_others_alone():
    drifted_fleet()
    h00, h05 = Host.objects.get(name="h00"), Host.objects.get(name="h05")

    report = host_counters_repair(host_ids=[h00.pk, h05.pk])

    assert report.hosts_checked == 2
    assert {change.host_name for change in report.changes} == {"h00", "h05"}
    assert {finding.host_name for finding in host_counter_findings()} == {f"h{i:02d}" for i in (1, 2, 3, 4, 6, 7)} | {
        "empty"
    }


@pytest.mark.django_db
def test_each_batch_locks_its_hosts_in_pk_order_before_it_writes(queries):
    hosts = fleet(6)
    for host in hosts[:5]:
        set_counter(host, "node_count", 1)
    progress = []

    with queries() as statements:
        report = host_counters_repair(batch_size=2, progress=progress.append)

    assert len(report.changes) == 5 and sum(progress) == report.hosts_checked == 6
    locks = [i for i, sql_text in enumerate(statements) if "FOR NO KEY UPDATE" in sql_text]
    writes = [i for i, sql_text in enumerate(statements) if sql_text.startswith('UPDATE "hosts_host"')]
    assert len(locks) == len(writes) == 3  # one lock and one write per batch
    assert all(lock < write for lock, write in zip(locks, writes, strict=True))
    assert all('ORDER BY "hosts_host"."id"' in statements[i] for i in locks)
    assert sum(sql_text.startswith("SAVEPOINT") for sql_text in statements) == 3  # a transaction per batch
    assert_counters_exact()


@pytest.mark.parametrize("hosts", [2, 20])
@pytest.mark.django_db
def test_repair_runs_the_same_queries_whatever_the_number_of_hosts_in_a_batch(hosts, django_assert_num_queries):
    for host in fleet(hosts):
        set_counter(host, "node_memory_bytes", GiB)

    # scan, then one batch: savepoint, lock, truth, write, record, release
    with django_assert_num_queries(7):
        report = host_counters_repair()

    assert len(report.changes) == hosts
    assert counter_drift() == {}


@pytest.mark.django_db
def test_a_host_whose_nodes_sum_past_the_64_bit_limit_is_refused_and_the_others_are_repaired():
    host, other = fleet(2)  # one batch: both hosts in the same transaction
    set_counter(other, "node_count", 5)
    set_counter(host, "node_count", 3)
    sql("UPDATE nodes_node SET disk_bytes = %s WHERE host_id = %s", BIGINT_MAX - 1, host.pk)

    report = host_counters_repair()

    [refusal] = report.refused
    assert (refusal.host_id, refusal.host_name) == (host.pk, host.name)
    assert isinstance(refusal.error, ResourceOverflow)
    assert f"host {host.name} sum to" in refusal.error.detail
    assert [change.host_name for change in report.changes] == [other.name]
    assert Host.objects.get(pk=other.pk).node_count == 2
    assert Host.objects.get(pk=host.pk).node_count == 5  # left as it was
    assert list(CounterRepair.objects.values_list("host_id", flat=True)) == [other.pk]


@pytest.mark.django_db
def test_a_batch_the_database_refuses_is_reported_and_the_next_batch_goes_on(monkeypatch):
    from config.errors import Busy
    from hosts import repair

    first, second = fleet(2)
    set_counter(first, "node_count", 1)
    set_counter(second, "node_count", 1)
    reconcile = repair.host_counters_reconcile

    def busy_on_first(*, host_ids, **kwargs):
        if first.pk in host_ids:
            raise Busy("The database could not complete the change now.")
        return reconcile(host_ids=host_ids, **kwargs)

    monkeypatch.setattr(repair, "host_counters_reconcile", busy_on_first)

    report = host_counters_repair(batch_size=1)

    assert [(r.host_name, r.error.code) for r in report.refused] == [(first.name, "busy")]
    assert [change.host_name for change in report.changes] == [second.name]
    assert Host.objects.get(pk=second.pk).node_count == 2


@pytest.mark.django_db
def test_a_host_without_nodes_and_zero_counters_is_left_alone():
    HostFactory()

    report = host_counters_repair()

    assert (report.hosts_checked, report.changes) == (1, [])
