"""The host audit: counters against the COUNT/SUM of their nodes, found exactly, in one query."""

import pytest

from config.errors import NotFound
from hosts.audit import (
    CapacityWarning,
    HostFinding,
    host_audit,
    host_capacity_warnings,
    host_count,
    host_counter_findings,
    hosts_by_id_or_name,
    hosts_with_expected,
)
from hosts.models import Host
from tests.factories import GiB, HostFactory
from tests.hosts.drift import drifted_fleet, fleet, set_counter, sql


def as_tuples(findings):
    return {(finding.host_name, finding.field, finding.recorded, finding.expected) for finding in findings}


@pytest.mark.django_db
def test_every_counter_too_high_or_too_low_is_found_exactly_and_clean_hosts_are_not():
    expected = drifted_fleet()

    findings = list(host_counter_findings())

    assert as_tuples(findings) == expected
    assert len(findings) == len(expected)
    assert not {"h08", "h09"} & {finding.host_name for finding in findings}
    assert all(isinstance(finding, HostFinding) for finding in findings)


@pytest.mark.django_db
def test_a_clean_fleet_has_no_findings():
    fleet(3)
    HostFactory(name="no-nodes")

    assert list(host_audit()) == []


@pytest.mark.django_db
def test_findings_can_be_limited_to_some_hosts():
    drifted_fleet()
    h00, h03 = Host.objects.get(name="h00"), Host.objects.get(name="h03")

    findings = list(host_counter_findings(host_ids=[h00.pk, h03.pk]))

    assert as_tuples(findings) == {("h00", "node_count", 3, 2), ("h03", "node_cpu_cores", 4, 5)}


@pytest.mark.django_db
def test_hosts_over_capacity_are_warnings_computed_from_their_nodes():
    small, _roomy = fleet(2)
    sql("UPDATE hosts_host SET cpu_cores = 4, disk_bytes = %s WHERE id = %s", 999 * GiB, small.pk)

    items = list(host_audit())

    assert items == [
        CapacityWarning(small.pk, small.name, "cpu_cores", 5, 4),
        CapacityWarning(small.pk, small.name, "disk_bytes", 1000 * GiB, 999 * GiB),
    ]
    assert list(host_capacity_warnings()) == items
    assert list(host_counter_findings()) == []


@pytest.mark.django_db
def test_hosts_with_expected_annotates_the_truth_and_drift_in_the_lists_one_query(django_assert_num_queries):
    drifted_fleet()

    with django_assert_num_queries(1):
        hosts = {host.name: host for host in hosts_with_expected()}

    assert hosts["h02"].expected_node_cpu_cores == 5 and hosts["h02"].node_cpu_cores == 8
    assert hosts["empty"].expected_node_count == 0 and hosts["empty"].expected_node_disk_bytes == 0
    assert {name for name, host in hosts.items() if host.has_drift} == {f"h{i:02d}" for i in range(8)} | {"empty"}
    assert hosts["h09"].expected_node_memory_bytes == 18 * GiB


@pytest.mark.django_db
def test_hosts_with_expected_filters_drifted_hosts():
    drifted_fleet()

    drifted = hosts_with_expected(Host.objects.filter(name__startswith="h")).filter(has_drift=True)

    assert sorted(drifted.values_list("name", flat=True)) == [f"h{i:02d}" for i in range(8)]


@pytest.mark.parametrize("hosts", [2, 20])
@pytest.mark.django_db
def test_the_host_audit_runs_one_query_whatever_the_fleet_size(hosts, django_assert_num_queries):
    made = fleet(hosts)
    set_counter(made[0], "node_cpu_cores", 1)
    set_counter(made[-1], "node_count", -1)

    with django_assert_num_queries(1):
        findings = list(host_audit())

    assert len(findings) == 2


@pytest.mark.django_db
def test_host_count_counts_the_hosts_in_scope():
    first, _second, third = fleet(3)

    assert host_count() == 3
    assert host_count(host_ids=[first.pk, third.pk]) == 2


@pytest.mark.django_db
def test_hosts_are_named_by_id_or_name_and_unknown_ones_are_refused():
    first, second = fleet(2)

    assert hosts_by_id_or_name([second.name, str(first.pk), second.name]) == [second, first]
    with pytest.raises(NotFound, match="No host with id or name 'nope'"):
        hosts_by_id_or_name([first.name, "nope"])
    with pytest.raises(NotFound):
        hosts_by_id_or_name(["00000000-0000-0000-0000-000000000000"])
