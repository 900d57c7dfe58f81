"""audit_resources and repair_counters as an operator runs them: output, JSON, exit codes."""

import json
import logging
import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from config.units import BIGINT_MAX
from hosts.models import AuditRun, CounterRepair, Host
from nodes.models import NodeLog
from tests.factories import GiB
from tests.hosts.drift import DEFAULTS, TRUTH, drifted_fleet, fleet, node, set_config, sql
from tests.invariants import assert_counters_exact, counter_drift
from tests.support import manage


def run(command, *args):
    """(exit code, stdout) of a command run in-process."""
    out = StringIO()
    try:
        call_command(command, *args, stdout=out, stderr=StringIO())
    except CommandError as error:
        return error.returncode, out.getvalue()
    return 0, out.getvalue()


def drifted():
    """drifted_fleet (9 hosts with counter findings) plus two nodes off their config:
    h08-b's config is NULL (it runs rpc on: 3 cores, 10 GiB), h09-a was given 6 cores by SQL
    (its host's counters left behind). Returns the exact findings as JSON would list them."""
    expected = {("host", name, field, recorded, want) for name, field, recorded, want in drifted_fleet()}
    set_config(node("h08-b"), None)
    sql("UPDATE nodes_node SET cpu_cores = 6 WHERE name = 'h09-a'")
    return expected | {
        ("host", "h09", "node_cpu_cores", 5, 9),
        ("node", "h08-b", "properties", None, json.dumps(DEFAULTS, sort_keys=True)),
        ("node", "h08-b", "cpu_cores", 3, 2),
        ("node", "h08-b", "memory_bytes", 10 * GiB, 8 * GiB),
        ("node", "h09-a", "cpu_cores", 6, 2),
    }


def json_findings(document):
    return {
        (
            item["kind"],
            item.get("node", item["host"]),
            item["field"],
            json.dumps(item["recorded"], sort_keys=True) if isinstance(item["recorded"], dict) else item["recorded"],
            json.dumps(item["expected"], sort_keys=True) if isinstance(item["expected"], dict) else item["expected"],
        )
        for item in document["findings"]
    }


@pytest.mark.django_db
def test_audit_prints_one_line_per_finding_and_a_summary_and_exits_1():
    expected = drifted()

    code, out = run("audit_resources")

    lines = out.splitlines()
    assert code == 1
    # Under each finding, its cause (§13): this drift was injected on the suite's own
    # connection, which carries Nodefleet's mark, so none is recorded.
    causes = lines[1:-1:2]
    assert all(
        re.fullmatch(r"  cause unknown: no outside write recorded since \S+Z \(recording began\)", c) for c in causes
    )
    lines = [line for line in lines if not line.startswith("  ")]
    assert len(causes) == len(expected) and len(lines) == len(expected) + 1
    assert "host h02: node_cpu_cores recorded 8 (8 cores), expected 5 (5 cores)" in lines
    assert "host h05: node_memory_bytes recorded 15032385536 (14.0 GiB), expected 19327352832 (18.0 GiB)" in lines
    assert "host empty: node_count recorded 3, expected 0" in lines
    assert "node h09-a on h09: cpu_cores recorded 6 (6 cores), expected 2 (2 cores)" in lines
    assert 'node h08-b on h08: properties recorded null, expected {"rpc": "off", "sync": "snap"}' in lines
    assert lines[-1] == "Checked 11 host(s) and 20 node(s): 12 host finding(s), 4 node finding(s)."


@pytest.mark.django_db
def test_audit_json_is_one_document_with_exactly_the_findings():
    expected = drifted()

    code, out = run("audit_resources", "--json")

    document = json.loads(out)
    assert code == 1
    assert json_findings(document) == expected
    assert len(document["findings"]) == len(expected)
    assert document["warnings"] == []
    assert document["summary"] == {
        "hosts_checked": 11,
        "nodes_checked": 20,
        "host_findings": 12,
        "node_findings": 4,
        "warnings": 0,
        "overdue_commands": 0,
    }
    h09 = next(item for item in document["findings"] if item["kind"] == "node")
    assert set(h09) == {
        "kind",
        "node_id",
        "node",
        "host",
        "field",
        "recorded",
        "expected",
        "outside_writes",
        "outside_writes_since",
    }
    assert all(
        item["outside_writes"] == [] for item in document["findings"]
    )  # drift made by the suite's marked connection


@pytest.mark.django_db
def test_a_clean_audit_exits_0_and_over_capacity_alone_is_a_warning_not_a_finding():
    small, _other = fleet(2)
    sql("UPDATE hosts_host SET memory_bytes = %s WHERE id = %s", 16 * GiB, small.pk)

    code, out = run("audit_resources")
    json_code, json_out = run("audit_resources", "--json")

    assert (code, json_code) == (0, 0)
    assert out.splitlines() == [
        "warning: host h00 is over capacity: memory_bytes allocated 19327352832 (18.0 GiB), "
        "capacity 17179869184 (16.0 GiB)",
        "Checked 2 host(s) and 4 node(s): no findings, 1 over-capacity warning(s).",
    ]
    document = json.loads(json_out)
    assert document["findings"] == []
    assert document["warnings"] == [
        {
            "kind": "over_capacity",
            "host_id": str(small.pk),
            "host": "h00",
            "resource": "memory_bytes",
            "allocated": 18 * GiB,
            "capacity": 16 * GiB,
        }
    ]


@pytest.mark.django_db
def test_audit_of_some_hosts_by_id_or_name():
    drifted()
    h09 = Host.objects.get(name="h09")

    code, out = run("audit_resources", "--host", "h08", "--host", str(h09.pk), "--host", "h08")

    assert code == 1
    assert out.splitlines()[-1] == "Checked 2 host(s) and 4 node(s): 1 host finding(s), 4 node finding(s)."


@pytest.mark.django_db
def test_an_unknown_host_is_a_usage_error_for_both_commands():
    fleet(1)

    for command in ("audit_resources", "repair_counters"):
        with pytest.raises(CommandError, match="No host with id or name 'h99'") as error:
            call_command(command, "--host", "h00", "--host", "h99", stdout=StringIO())
        assert error.value.returncode == 2


@pytest.mark.django_db
def test_audit_logs_each_finding_at_warning(caplog):
    drifted()

    with caplog.at_level(logging.WARNING):
        run("audit_resources", "--json")

    logged = [record for record in caplog.records if record.name == "nodes.audit"]
    assert len(logged) == 16
    assert all(record.levelno == logging.WARNING for record in logged)
    assert "node h09-a on h09: cpu_cores recorded 6" in caplog.text


@pytest.mark.parametrize("hosts", [2, 20])
@pytest.mark.django_db
def test_the_audit_command_runs_the_same_queries_whatever_the_fleet_size(hosts, django_assert_num_queries):
    made = fleet(hosts)
    sql("UPDATE hosts_host SET node_count = 9 WHERE id = %s", made[-1].pk)
    sql("UPDATE nodes_node SET memory_bytes = 1 WHERE name = 'h00-a'")

    # node count, host count, host audit, image specs (2), combinations, wrong nodes, the
    # findings' outside writes (one query for every finding, §13), overdue agent commands,
    # whether the database is read-only, the AuditRun
    with django_assert_num_queries(11):
        code, out = run("audit_resources")

    findings = [line for line in out.splitlines() if not line.startswith("  cause unknown")]
    assert code == 1 and len(findings) == 4  # h00 memory, last host count, h00-a memory, summary


@pytest.mark.django_db
def test_repair_prints_each_change_records_it_and_reports_node_findings_left():
    drifted()

    code, out = run("repair_counters")

    lines = out.splitlines()
    assert code == 0
    assert "host h02: repaired node_cpu_cores 8 (8 cores) -> 5 (5 cores)" in lines
    assert "host empty: repaired node_count 3 -> 0, node_cpu_cores 6 (6 cores) -> 0 (0 cores), " in out
    assert "host h09: repaired node_cpu_cores 5 (5 cores) -> 9 (9 cores)" in lines
    assert "Repaired 10 host(s) and 0 node(s); 11 host(s) checked." in lines
    assert "  node h09-a on h09: cpu_cores recorded 6 (6 cores), expected 2 (2 cores)" in lines
    assert lines[-1] == "  4 node finding(s) left; run with --fix-nodes to repair them."
    assert_counters_exact()
    assert CounterRepair.objects.filter(source="cli").count() == 10


@pytest.mark.django_db
def test_a_second_repair_says_there_is_nothing_to_change():
    fleet(3)
    sql("UPDATE hosts_host SET node_count = 0")
    assert run("repair_counters")[0] == 0

    code, out = run("repair_counters")

    assert code == 0
    assert out.splitlines() == [
        "Nothing to change: 3 host(s) checked, every counter equals its nodes.",
        "Re-audit:",
        "  clean.",
    ]
    assert CounterRepair.objects.count() == 3


@pytest.mark.django_db
def test_a_dry_run_writes_nothing_and_exits_1_when_something_would_change():
    drifted()
    before = counter_drift()

    code, out = run("repair_counters", "--dry-run", "--fix-nodes")

    assert code == 1
    assert "host h02: would change node_cpu_cores 8 (8 cores) -> 5 (5 cores)" in out.splitlines()
    assert "node h09-a on h09: would change cpu_cores 6 (6 cores) -> 2 (2 cores)" in out.splitlines()
    assert "Would change 10 host(s) and 2 node(s); 11 host(s) checked; nothing was written." in out.splitlines()
    assert counter_drift() == before
    assert CounterRepair.objects.count() == NodeLog.objects.filter(event="allocation_repaired").count() == 0


@pytest.mark.django_db
def test_a_dry_run_with_nothing_to_change_exits_0():
    fleet(2)

    code, out = run("repair_counters", "--dry-run")

    assert code == 0 and out.startswith("Nothing to change: 2 host(s) checked")


@pytest.mark.django_db
def test_fix_nodes_repairs_allocations_first_then_counters_and_the_audit_is_clean():
    drifted()

    code, out = run("repair_counters", "--fix-nodes")

    lines = [line for line in out.splitlines() if not line.startswith("  cause unknown")]  # §13, none recorded
    assert code == 0
    assert lines[:2] == [
        'node h08-b on h08: repaired properties null -> {"rpc": "off", "sync": "snap"}, '
        "cpu_cores 3 (3 cores) -> 2 (2 cores), memory_bytes 10737418240 (10.0 GiB) -> 8589934592 (8.0 GiB)",
        "node h09-a on h09: repaired cpu_cores 6 (6 cores) -> 2 (2 cores)",
    ]
    assert "host h08: repaired node_cpu_cores 5 (5 cores) -> 4 (4 cores), " in out  # moved with h08-b
    assert not any(line.startswith("host h09") for line in lines)  # h09-a is back where h09's counters were
    assert lines[-2:] == ["Re-audit:", "  clean."]
    assert run("audit_resources") == (0, "Checked 11 host(s) and 20 node(s): no findings.\n")
    logs = NodeLog.objects.filter(event="allocation_repaired").order_by("node_name")
    assert [(log.node_name, log.old_cpu_cores, log.new_cpu_cores, log.source) for log in logs] == [
        ("h08-b", 3, 2, "cli"),
        ("h09-a", 6, 2, "cli"),
    ]
    assert node("h08-b").properties == DEFAULTS
    assert run("repair_counters", "--fix-nodes")[1].startswith("Nothing to change")


@pytest.mark.django_db
def test_repair_json_lists_changes_and_what_is_left():
    drifted()
    h02 = Host.objects.get(name="h02")

    code, out = run("repair_counters", "--json", "--host", "h02", "--host", "h08", "--batch-size", "1")

    document = json.loads(out)
    assert code == 0
    assert document["host_changes"] == [
        {
            "host_id": str(h02.pk),
            "host": "h02",
            "old": {**TRUTH, "node_cpu_cores": 8},
            "new": TRUTH,
            "outside_writes": [],  # §13: the suite's connection is Nodefleet's, so none recorded
            "outside_writes_since": document["host_changes"][0]["outside_writes_since"],
        }
    ]
    assert document["node_changes"] == [] and document["refused"] == []
    assert {(item["node"], item["field"]) for item in document["findings_after"]} == {
        ("h08-b", "properties"),
        ("h08-b", "cpu_cores"),
        ("h08-b", "memory_bytes"),
    }
    assert document["summary"] == {
        "dry_run": False,
        "hosts_checked": 2,
        "hosts_changed": 1,
        "nodes_changed": 0,
        "nodes_refused": 0,
        "hosts_refused": 0,
        "findings_after": 3,
    }
    assert document["hosts_refused"] == []


def overflowing_and_drifted():
    """h00's nodes sum past 2**63-1 of disk (its counters drifted too); h01's counters drifted."""
    h00, h01 = fleet(2)
    sql("UPDATE nodes_node SET disk_bytes = %s WHERE host_id = %s", BIGINT_MAX - 1, h00.pk)
    sql("UPDATE hosts_host SET node_count = 9 WHERE id IN (%s, %s)", h00.pk, h01.pk)
    return h00, h01


@pytest.mark.django_db
def test_one_overflowing_host_does_not_stop_the_repair_of_the_others():
    h00, h01 = overflowing_and_drifted()

    code, out = run("repair_counters")

    assert code == 1
    lines = out.splitlines()
    assert "host h01: repaired node_count 9 -> 2" in lines
    assert any(line.startswith("host h00: not repaired: The nodes of host h00 sum to") for line in lines)
    assert "1 host(s) could not be repaired" in out
    assert Host.objects.get(pk=h01.pk).node_count == 2
    assert CounterRepair.objects.filter(host=h01).count() == 1
    assert Host.objects.get(pk=h00.pk).node_count == 9


@pytest.mark.django_db
def test_one_overflowing_host_is_listed_in_the_json_beside_every_committed_change():
    h00, _h01 = overflowing_and_drifted()

    code, out = run("repair_counters", "--json", "--batch-size", "1")

    document = json.loads(out)
    assert code == 1
    assert [change["host"] for change in document["host_changes"]] == ["h01"]
    [refused] = document["hosts_refused"]
    assert refused["host_id"] == str(h00.pk) and refused["code"] == "resource_overflow"
    assert document["summary"]["hosts_refused"] == 1 and document["summary"]["hosts_changed"] == 1


@pytest.mark.django_db
def test_a_batch_size_below_1_is_a_usage_error():
    with pytest.raises(CommandError, match="--batch-size must be at least 1") as error:
        call_command("repair_counters", "--batch-size", "0", stdout=StringIO())
    assert error.value.returncode == 2


@pytest.mark.django_db(transaction=True)
def test_from_a_shell_exit_codes_are_0_1_2_and_json_stays_clean_of_logs():
    drifted()

    audit = manage("audit_resources", "--json")
    assert audit.returncode == 1
    assert json.loads(audit.stdout)["summary"]["host_findings"] == 12
    assert re.search(r"WARNING nodes\.audit .*host h02: node_cpu_cores recorded 8", audit.stderr)
    assert "\r" not in audit.stderr  # no progress bar when piped

    assert manage("audit_resources", "--host", "nope").returncode == 2
    assert manage("repair_counters", "--batch-size", "x").returncode == 2

    repair = manage("repair_counters", "--fix-nodes")
    assert repair.returncode == 0, repair.stderr
    assert "Repaired 10 host(s) and 2 node(s)" in repair.stdout
    assert "\r" not in repair.stderr

    assert manage("audit_resources").returncode == 0


@pytest.mark.django_db
def test_an_audit_of_the_fleet_records_its_summary_for_metrics_and_an_audit_of_some_hosts_does_not():
    drifted()

    run("audit_resources", "--host", "h02")
    assert AuditRun.objects.count() == 0
    run("audit_resources")

    audit = AuditRun.objects.get()
    assert (audit.hosts_checked, audit.nodes_checked, audit.node_findings, audit.source) == (11, 20, 4, "cli")
    assert audit.drift["node_cpu_cores"] == {"hosts": 4, "amount": 3 + 1 + 6 + 4}  # h02, h03, empty, h09
    assert audit.drift["node_count"] == {"hosts": 3, "amount": 1 + 2 + 3}  # h00, h01, empty


@pytest.mark.django_db
def test_stored_names_with_control_characters_cannot_forge_lines_of_audit_or_repair():
    host, _other = fleet(2)
    forged = "h00\nhost h01: node_count recorded 0, expected 7\x1b[2K"
    Host.objects.filter(pk=host.pk).update(name=forged)  # written around the app (old data)
    sql("UPDATE hosts_host SET node_count = 9 WHERE id = %s", host.pk)

    audit_code, audit = run("audit_resources")
    repair_code, repair = run("repair_counters", "--dry-run")

    escaped = "h00\\nhost h01: node_count recorded 0, expected 7\\x1b[2K"
    assert audit.splitlines()[0] == f"host {escaped}: node_count recorded 9, expected 2"
    assert audit.splitlines()[1].startswith("  cause unknown: no outside write recorded since ")
    assert len(audit.splitlines()) == 3  # the finding, its cause (§13) and the summary
    assert repair.splitlines()[0] == f"host {escaped}: would change node_count 9 -> 2"
    assert "\x1b" not in audit + repair
    assert (audit_code, repair_code) == (1, 1)


@pytest.fixture
def read_only_session():
    """This session's transactions are read-only from now on, as on a hot-standby replica."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    yield
    with connection.cursor() as cursor:
        cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE")


def run_with_stderr(command, *args):
    out, err = StringIO(), StringIO()
    try:
        call_command(command, *args, stdout=out, stderr=err)
    except CommandError as error:
        return error.returncode, out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


@pytest.mark.django_db(transaction=True)
def test_an_audit_on_a_read_only_database_keeps_its_exit_codes_and_records_nothing(read_only_session):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE")
    host, _other = fleet(2)
    with connection.cursor() as cursor:
        cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")

    clean = run_with_stderr("audit_resources")
    clean_json = run_with_stderr("audit_resources", "--json")
    with connection.cursor() as cursor:
        cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE")
        cursor.execute("UPDATE hosts_host SET node_count = 9 WHERE id = %s", [host.pk])
        cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    found = run_with_stderr("audit_resources")

    assert clean[0] == 0 and clean[1].endswith("no findings.\n")
    assert "the database is read-only" in clean[2] and "not recorded" in clean[2]
    assert clean_json[0] == 0 and json.loads(clean_json[1])["summary"]["host_findings"] == 0
    assert found[0] == 1 and "host h00: node_count recorded 9, expected 2" in found[1]
    assert AuditRun.objects.count() == 0
