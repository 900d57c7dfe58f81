"""The node audit: each node's allocation against its config on its image, found exactly."""

import pytest

from nodes.audit import node_allocation_findings
from nodes.changes import node_upgrade
from tests.factories import GiB, HostFactory, place_node
from tests.hosts.drift import canonical, drifted_nodes, ethereum_image, fleet, node, set_config, sql


def as_tuples(findings):
    return {
        (finding.node_name, finding.field, canonical(finding.recorded), canonical(finding.expected))
        for finding in findings
    }


@pytest.mark.django_db
def test_nodes_off_their_image_and_corrupt_configs_are_found_exactly():
    expected = drifted_nodes()

    findings = list(node_allocation_findings())

    assert as_tuples(findings) == expected
    assert len(findings) == len(expected)
    assert not {"h03-b", "h04-a", "h04-b"} & {finding.node_name for finding in findings}
    assert {finding.host_name for finding in findings if finding.node_name == "h02-b"} == {"h02"}


@pytest.mark.django_db
def test_a_clean_fleet_with_configs_of_every_shape_has_no_node_findings():
    image = ethereum_image()
    host = HostFactory()
    place_node(host=host, image=image, properties={"sync": "full"})
    place_node(host=host, image=image, properties={})
    sql('UPDATE nodes_node SET properties = properties || \'{"unknown": "x"}\'::jsonb')  # keys the image lacks

    assert list(node_allocation_findings()) == []


@pytest.mark.django_db
def test_node_findings_can_be_limited_to_some_hosts():
    drifted_nodes()
    hosts = [node("h01-a").host_id, node("h04-a").host_id]

    findings = list(node_allocation_findings(host_ids=hosts))

    assert {finding.node_name for finding in findings} == {"h01-a", "h01-b"}


@pytest.mark.django_db
def test_the_audit_agrees_with_every_upgrade():
    """Audit and upgrade share the arithmetic: whatever the configs, upgraded nodes are clean,
    and a corrupt config is clean again once an upgrade has carried it over."""
    old, new = ethereum_image("1.0"), ethereum_image("2.0", min_cpu_cores=3, min_memory_bytes=4 * GiB)
    host = HostFactory(cpu_cores=1000)
    configs = [{}, {"rpc": "on"}, {"sync": "full"}, {"rpc": "on", "sync": "full"}]
    nodes = [place_node(host=host, image=old, properties=config) for config in configs]
    corrupt = place_node(host=host, image=old, properties={"rpc": "on"})
    set_config(corrupt, '{"rpc": 1, "sync": "full"}')
    assert {finding.node_name for finding in node_allocation_findings()} == {corrupt.name}

    for upgraded in [*nodes, corrupt]:
        node_upgrade(node_id=upgraded.pk, image_id=new.pk)
    for downgraded in nodes[:2]:
        node_upgrade(node_id=downgraded.pk, image_id=old.pk)

    assert list(node_allocation_findings()) == []
    assert node(corrupt.name).properties == {"rpc": "off", "sync": "full"}


@pytest.mark.parametrize("hosts", [2, 20])
@pytest.mark.django_db
def test_the_node_audit_runs_the_same_queries_whatever_the_fleet_size(hosts, django_assert_num_queries):
    fleet(hosts)
    sql("UPDATE nodes_node SET cpu_cores = 9 WHERE name = 'h01-a'")
    set_config(node("h00-b"), None)

    with django_assert_num_queries(4):  # images, their properties, combinations, wrong nodes
        findings = list(node_allocation_findings())

    assert {finding.node_name for finding in findings} == {"h01-a", "h00-b"}
