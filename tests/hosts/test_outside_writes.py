"""Writes from outside, attributed (SPEC §13), on PostgreSQL with real commits: what the triggers
record from a connection without Nodefleet's mark (as psql would write), what they never record
(Nodefleet's own writes, in this process and in others), and the audit's and repair's join."""

import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from hosts.admin.outside import outside_writes_url
from hosts.models import CounterRepair, Host, OutsideWrite
from hosts.outside import HOST_COLUMNS as TRACKED_HOST_COLUMNS
from hosts.outside import Write, recording, write_text
from hosts.repair import host_counters_repair
from nodes.changes import node_create, node_delete, node_upgrade
from nodes.models import Node, NodeLog
from nodes.repair import node_allocations_repair
from nodes.rollouts.plan import selection_check
from nodes.rollouts.services import rollout_create
from tests.admin.conftest import client_for, post_action, staff
from tests.factories import GiB, HostFactory, ImageFactory, TiB, UserFactory, place_node, report
from tests.hosts.drift import ethereum_image
from tests.nodes.rollouts.support import drive
from tests.nodes.test_audit_commands import run
from tests.support import manage

pytestmark = pytest.mark.django_db(transaction=True)  # the triggers fire on real commits

#: The host columns the triggers track on this schema: §1's, and §11's once its migration ran.
HOST_COLUMNS = [name for name in TRACKED_HOST_COLUMNS if name in {f.column for f in Host._meta.concrete_fields}]
#: How the test changes a column that `+ 7` would not (a string, a NULL-able count, a choice).
CHANGE = {"region": "region || '-x'", "max_nodes": "coalesce(max_nodes, 0) + 7", "scheduling": "'manual'"}


def connect(application_name="psql", **options):
    db = connection.settings_dict
    return psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"],
        dbname=db["NAME"],
        application_name=application_name,
        autocommit=True,
        **options,
    )


@pytest.fixture
def outside():
    """A connection as an operator's psql opens one: no Nodefleet mark."""
    with connect() as conn:
        yield conn


def write(conn, statement, *params):
    """Runs `statement` in its own committed transaction; returns the transaction's id."""
    with conn.transaction(), conn.cursor() as cursor:
        cursor.execute(statement, params)
        cursor.execute("SELECT pg_current_xact_id()::text::bigint")
        return cursor.fetchone()[0]


@pytest.fixture
def small_fleet():
    image = ethereum_image()
    host = HostFactory(name="h1", cpu_cores=64, memory_bytes=256 * GiB, disk_bytes=10 * TiB)
    other = HostFactory(name="h2", cpu_cores=64, memory_bytes=256 * GiB, disk_bytes=10 * TiB)
    nodes = [place_node(host=host, image=image, name=f"h1-{letter}") for letter in "ab"]
    return host, other, nodes, image


# -- recorded --------------------------------------------------------------------------------------


@pytest.mark.parametrize("column", HOST_COLUMNS)
def test_an_outside_update_of_each_tracked_host_column_is_recorded_old_to_new(outside, small_fleet, column):
    host = small_fleet[0]
    value = f"SELECT to_jsonb({column}) FROM hosts_host WHERE id = %s"
    before = outside.execute(value, [host.pk]).fetchone()[0]
    started = timezone.now()

    change = CHANGE.get(column, f"{column} + 7")
    xid = write(outside, f"UPDATE hosts_host SET {column} = {change}, name = name WHERE id = %s", host.pk)

    after = outside.execute(value, [host.pk]).fetchone()[0]
    record = OutsideWrite.objects.get()
    assert (record.table, record.operation, record.row_id, record.host_id) == ("hosts_host", "UPDATE", host.pk, host.pk)
    assert record.from_host_id is None
    assert before != after and record.changes == {column: {"old": before, "new": after}}
    assert (record.session_user, record.application_name) == (connection.settings_dict["USER"], "psql")
    assert record.client_addr == "127.0.0.1"  # over TCP, as DATABASE_URL connects
    assert record.transaction_id == xid
    assert started - timedelta(seconds=5) < record.created_at < timezone.now() + timedelta(seconds=5)


def test_the_triggers_track_the_columns_of_the_contract_that_the_tables_have():
    meta = recording()
    assert meta["host_columns"] == HOST_COLUMNS
    assert meta["node_columns"] == ["host_id", "cpu_cores", "memory_bytes", "disk_bytes"]
    assert set(HOST_COLUMNS) >= {"cpu_cores", "memory_bytes", "disk_bytes", "node_count", "node_cpu_cores"}


def test_an_update_of_an_untracked_column_or_to_the_same_value_is_not_recorded(outside, small_fleet):
    host = small_fleet[0]
    write(outside, "UPDATE hosts_host SET name = 'renamed' WHERE id = %s", host.pk)
    write(outside, "UPDATE hosts_host SET node_count = node_count WHERE id = %s", host.pk)
    write(outside, "UPDATE nodes_node SET properties = properties, cpu_cores = cpu_cores")
    assert not OutsideWrite.objects.exists()


def test_outside_node_allocation_updates_and_moves_are_recorded(outside, small_fleet):
    host, other, (node, _), _image = small_fleet

    write(
        outside,
        "UPDATE nodes_node SET cpu_cores = 9, memory_bytes = memory_bytes * 2, disk_bytes = 1 WHERE id = %s",
        node.pk,
    )
    write(outside, "UPDATE nodes_node SET host_id = %s WHERE id = %s", other.pk, node.pk)

    allocation, move = OutsideWrite.objects.order_by("id")
    assert (allocation.table, allocation.operation, allocation.row_id) == ("nodes_node", "UPDATE", node.pk)
    assert allocation.changes == {
        "cpu_cores": {"old": node.cpu_cores, "new": 9},
        "memory_bytes": {"old": node.memory_bytes, "new": node.memory_bytes * 2},
        "disk_bytes": {"old": node.disk_bytes, "new": 1},
    }
    assert (allocation.host_id, allocation.from_host_id) == (host.pk, None)
    assert move.changes == {"host_id": {"old": str(host.pk), "new": str(other.pk)}}
    assert (move.host_id, move.from_host_id) == (other.pk, host.pk)  # it concerns both hosts


def test_outside_node_insert_and_delete_are_recorded_with_what_they_held(outside, small_fleet):
    host, _other, (node, _), _image = small_fleet
    copy = uuid.uuid4()

    with outside.transaction():
        outside.execute("CREATE TEMP TABLE copy ON COMMIT DROP AS SELECT * FROM nodes_node WHERE id = %s", [node.pk])
        outside.execute("UPDATE copy SET id = %s, name = 'by-hand'", [copy])
        outside.execute("INSERT INTO nodes_node SELECT * FROM copy")
    write(outside, "DELETE FROM nodes_node WHERE id = %s", node.pk)

    inserted, deleted = OutsideWrite.objects.order_by("id")
    allocation = {"cpu_cores": node.cpu_cores, "memory_bytes": node.memory_bytes, "disk_bytes": node.disk_bytes}
    assert (inserted.operation, inserted.row_id, inserted.host_id) == ("INSERT", copy, host.pk)
    assert inserted.changes == {
        "host_id": {"old": None, "new": str(host.pk)},
        **{name: {"old": None, "new": amount} for name, amount in allocation.items()},
    }
    assert (deleted.operation, deleted.row_id, deleted.host_id) == ("DELETE", node.pk, host.pk)
    assert deleted.changes == {
        "host_id": {"old": str(host.pk), "new": None},
        **{name: {"old": amount, "new": None} for name, amount in allocation.items()},
    }


def test_an_outside_host_delete_is_recorded(outside):
    host = HostFactory(cpu_cores=4)
    write(outside, "DELETE FROM hosts_host WHERE id = %s", host.pk)
    record = OutsideWrite.objects.get()
    assert (record.operation, record.row_id, record.host_id) == ("DELETE", host.pk, host.pk)
    assert record.changes["cpu_cores"] == {"old": 4, "new": None}


def test_a_writer_without_any_right_on_the_record_is_recorded_all_the_same(outside, small_fleet):
    """SECURITY DEFINER: a role that may update hosts but not touch hosts_outsidewrite."""
    host = small_fleet[0]
    role = f"nf_outside_ops_{uuid.uuid4().hex[:8]}"
    with outside.cursor() as cursor:
        cursor.execute(f"CREATE ROLE {role} LOGIN")
        cursor.execute(f"GRANT USAGE ON SCHEMA public TO {role}; GRANT SELECT, UPDATE ON hosts_host TO {role}")
    try:
        db = connection.settings_dict
        with psycopg.connect(
            host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=role, dbname=db["NAME"], autocommit=True
        ) as ops:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                ops.execute("SELECT 1 FROM hosts_outsidewrite")
            write(ops, "UPDATE hosts_host SET node_count = node_count + 1 WHERE id = %s", host.pk)
        assert OutsideWrite.objects.get().session_user == role
    finally:
        with outside.cursor() as cursor:
            cursor.execute(f"REVOKE ALL ON hosts_host FROM {role}; REVOKE ALL ON SCHEMA public FROM {role}")
            cursor.execute(f"DROP ROLE {role}")


def test_the_mark_exempts_a_connection_and_only_the_value_1(small_fleet):
    host = small_fleet[0]
    with connect(options="-c nodefleet.app=1") as marked, connect(options="-c nodefleet.app=0") as other:
        write(marked, "UPDATE hosts_host SET node_count = node_count + 1 WHERE id = %s", host.pk)
        write(other, "UPDATE hosts_host SET node_count = node_count - 1 WHERE id = %s", host.pk)
    assert list(OutsideWrite.objects.values_list("changes", flat=True)) == [{"node_count": {"old": 3, "new": 2}}]


# -- not recorded: Nodefleet's own writes ------------------------------------------------------


def test_nodefleets_services_agent_results_rollouts_and_repair_record_nothing(small_fleet):
    host, other, (node, spare), image = small_fleet
    v2 = ImageFactory(protocol="ethereum", version="2.0", min_cpu_cores=3, min_memory_bytes=GiB)

    created = node_create(name="made", host_id=other.pk, image_id=image.pk).node  # service
    report(created, "succeeded")  # agent result (nodes.lifecycle)
    node_upgrade(node_id=node.pk, image_id=v2.pk)
    report(node, "succeeded")
    node_delete(node_id=created.pk)
    report(created, "succeeded")
    selection = selection_check(image_id=v2.pk, canary=1, batch_size=2, pause_after_canary=False)
    rollout = rollout_create(selection=selection, start=True)
    drive(rollout)
    Host.objects.filter(pk=host.pk).update(node_count=99)  # drift by the app's own connection
    Node.objects.filter(pk=spare.pk).update(cpu_cores=77)
    node_allocations_repair()
    host_counters_repair()

    assert Node.objects.get(pk=spare.pk).image_id == v2.pk  # the rollout ran
    assert NodeLog.objects.filter(event="allocation_repaired").exists() and CounterRepair.objects.exists()
    assert not OutsideWrite.objects.exists()


def test_the_admin_records_nothing(small_fleet):
    host, other, _nodes, _image = small_fleet
    Host.objects.filter(pk=other.pk).update(node_count=5)
    client = client_for(staff("hosts.change_host", "hosts.repair_counters"), csrf=True)
    response = client.post(
        f"/admin/hosts/host/{host.pk}/change/",
        {
            "name": "h1",
            "cpu_cores": 128,
            "memory_bytes": 512 * GiB,
            "disk_bytes": 20 * TiB,
            "csrfmiddlewaretoken": client.cookies["csrftoken"].value,
        },
    )
    assert response.status_code == 302, response.content
    post_action(client, "admin:hosts_host_changelist", "repair_counters", [other.pk], step="apply")
    assert Host.objects.get(pk=host.pk).cpu_cores == 128 and Host.objects.get(pk=other.pk).node_count == 0
    assert not OutsideWrite.objects.exists()


def test_other_processes_of_nodefleet_record_nothing(small_fleet):
    """Each process connects with the mark from DATABASES: commands in their own process."""
    host = small_fleet[0]
    Host.objects.filter(pk=host.pk).update(node_count=0)
    assert manage("seed_demo", "--hosts", "2", "--nodes-per-host", "2").returncode == 0
    assert manage("repair_counters").returncode == 0
    assert Host.objects.get(pk=host.pk).node_count == 2
    assert not OutsideWrite.objects.exists()


# -- the audit's join ----------------------------------------------------------------------------


def causes(out: str, subject: str) -> list[str]:
    """The lines printed under the finding line that starts with `subject`."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(subject))
    under = []
    for line in lines[start + 1 :]:
        if not line.startswith("  "):
            break
        under.append(line.strip())
    return under


def when(record: OutsideWrite) -> str:
    return record.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_drift_from_one_outside_write_names_who_when_and_from_where(outside, small_fleet):
    host = small_fleet[0]
    write(outside, "UPDATE hosts_host SET node_memory_bytes = %s WHERE id = %s", 24 * GiB, host.pk)
    record = OutsideWrite.objects.get()
    user = connection.settings_dict["USER"]

    code, out = run("audit_resources")
    json_code, json_out = run("audit_resources", "--json")

    assert (code, json_code) == (1, 1)
    assert causes(out, "host h1: node_memory_bytes") == [
        f"changed outside Nodefleet at {when(record)} by database user {user} (application psql, 127.0.0.1): "
        f"node_memory_bytes {16 * GiB} (16.0 GiB) -> {24 * GiB} (24.0 GiB)"
    ]
    (finding,) = json.loads(json_out)["findings"]
    assert finding["outside_writes"] == [
        {
            "id": record.pk,
            "created_at": record.created_at.isoformat(),
            "table": "hosts_host",
            "operation": "UPDATE",
            "row_id": str(host.pk),
            "host_id": str(host.pk),
            "from_host_id": None,
            "changes": {"node_memory_bytes": {"old": 16 * GiB, "new": 24 * GiB}},
            "session_user": user,
            "application_name": "psql",
            "client_addr": "127.0.0.1",
            "transaction_id": record.transaction_id,
        }
    ]


def test_two_outside_writes_on_one_host_are_listed_under_the_findings_they_explain(outside, small_fleet):
    host, _other, (node, _), _image = small_fleet
    write(outside, "UPDATE hosts_host SET node_count = 5 WHERE id = %s", host.pk)
    with connect("cleanup.sh") as script:
        write(script, "UPDATE nodes_node SET memory_bytes = memory_bytes + %s WHERE id = %s", GiB, node.pk)
    first, second = OutsideWrite.objects.order_by("id")

    code, out = run("audit_resources")

    assert code == 1
    assert [line.split(": ", 1)[0] for line in causes(out, "host h1: node_count")] == [
        f"changed outside Nodefleet at {when(first)} by database user root (application psql, 127.0.0.1)"
    ]
    assert causes(out, "host h1: node_memory_bytes") == [
        f"changed outside Nodefleet at {when(second)} by database user root (application cleanup.sh, 127.0.0.1): "
        f"node {node.pk}: memory_bytes {8 * GiB} (8.0 GiB) -> {9 * GiB} (9.0 GiB)"
    ]
    # the node's own finding names the write on its row
    assert causes(out, "node h1-a on h1: memory_bytes") == causes(out, "host h1: node_memory_bytes")


def test_a_node_moved_outside_explains_both_hosts_counters(outside, small_fleet):
    host, other, (node, _), _image = small_fleet
    write(outside, "UPDATE nodes_node SET host_id = %s WHERE id = %s", other.pk, node.pk)

    _code, out = run("audit_resources")

    moved = f"node {node.pk}: host_id {host.pk} -> {other.pk}"
    assert all(line.endswith(moved) for line in causes(out, "host h1: node_count"))
    assert all(line.endswith(moved) for line in causes(out, "host h2: node_count"))


def test_drift_without_an_outside_write_says_cause_unknown_since_recording_began(small_fleet):
    host = small_fleet[0]
    Host.objects.filter(pk=host.pk).update(node_count=9)  # Nodefleet's mark: not recorded
    since = recording()["since"]  # the trigger function's comment
    began = datetime.fromisoformat(since).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    code, out = run("audit_resources")

    assert code == 1
    assert causes(out, "host h1: node_count") == [
        f"cause unknown: no outside write recorded since {began} (recording began)"
    ]


def test_the_window_starts_at_the_hosts_last_repair(outside, small_fleet):
    host, _other, (node, _), _image = small_fleet
    write(outside, "UPDATE hosts_host SET node_count = 7 WHERE id = %s", host.pk)
    host_counters_repair()  # repaired over the first write
    repair = CounterRepair.objects.get()
    write(outside, "UPDATE hosts_host SET node_count = 8 WHERE id = %s", host.pk)

    _code, out = run("audit_resources")

    (line,) = causes(out, "host h1: node_count")
    assert line.endswith("node_count 2 -> 8")

    host_counters_repair()
    _code, out = run("audit_resources")
    assert out.startswith("Checked")  # clean

    # an allocation_repaired on one of its nodes starts the window too
    Node.objects.filter(pk=node.pk).update(cpu_cores=40)  # the app's own: cause unknown
    node_allocations_repair()
    log = NodeLog.objects.get(event="allocation_repaired")
    Host.objects.filter(pk=host.pk).update(node_count=1)
    assert CounterRepair.objects.count() == 2  # the node's repair left its host's counters as they were
    _code, out = run("audit_resources")
    stamp = log.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert causes(out, "host h1: node_count") == [
        f"cause unknown: no outside write recorded since {stamp} (the host's last repair)"
    ]
    assert log.created_at > repair.created_at


def test_repair_names_the_outside_writes_it_repaired_over(outside, small_fleet):
    host = small_fleet[0]
    write(outside, "UPDATE hosts_host SET node_disk_bytes = 0 WHERE id = %s", host.pk)

    dry_code, dry = run("repair_counters", "--dry-run")
    code, out = run("repair_counters", "--json")

    assert (dry_code, code) == (1, 0)
    (line,) = causes(dry, "host h1: would change node_disk_bytes")
    assert re.fullmatch(r"would repair over: changed outside Nodefleet at \S+Z by database user root .*", line)
    assert line.endswith(f"node_disk_bytes {1000 * GiB} (1000.0 GiB) -> 0 (0 B)")
    (change,) = json.loads(out)["host_changes"]
    assert [item["id"] for item in change["outside_writes"]] == [OutsideWrite.objects.get().pk]


def test_the_audits_join_is_one_query_whatever_the_number_of_findings(outside, django_assert_num_queries):
    image = ethereum_image()
    hosts = [HostFactory(name=f"q{i}") for i in range(6)]
    for host in hosts:
        place_node(host=host, image=image)
    write(outside, "UPDATE hosts_host SET node_count = node_count + 1, node_cpu_cores = 0")
    write(outside, "UPDATE nodes_node SET memory_bytes = 1")
    # node count, host count, host audit, image specs (2), combinations, wrong nodes, the join,
    # overdue commands, read-only check, the AuditRun: as with one finding
    with django_assert_num_queries(11):
        code, out = run("audit_resources")
    assert code == 1 and out.count("changed outside Nodefleet") == 6 * 2 + 6 * 2  # host counters + nodes


# -- manage.py outside_writes --------------------------------------------------------------------


def test_the_command_lists_filters_prunes_and_refuses_bad_usage(outside, small_fleet):
    _host, other, (node, _), _image = small_fleet
    write(outside, "UPDATE hosts_host SET node_count = 9 WHERE id = %s", other.pk)
    write(outside, "UPDATE nodes_node SET cpu_cores = 1 WHERE id = %s", node.pk)
    first, second = OutsideWrite.objects.order_by("id")

    code, out = run("outside_writes")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith(f"hosts_host {other.pk}: changed outside Nodefleet at ")
    assert lines[1].startswith(f"nodes_node {node.pk}: changed outside Nodefleet at ")
    assert re.fullmatch(r"2 outside write\(s\); recording since \S+Z\.", lines[2])

    code, out = run("outside_writes", "--host", "h1", "--json")
    assert code == 0 and [item["id"] for item in json.loads(out)["outside_writes"]] == [second.pk]
    code, out = run("outside_writes", "--since", (second.created_at + timedelta(seconds=1)).isoformat())
    assert out.splitlines() == ["0 outside write(s); recording since " + out.split("recording since ")[1].strip()]

    for bad in (["--since", "yesterday"], ["--host", "nope"], ["--prune-before", "2026-01-01", "--host", "h1"]):
        assert run("outside_writes", *bad)[0] == 2

    code, out = run("outside_writes", "--prune-before", second.created_at.isoformat())
    assert code == 0 and out.startswith("Pruned 1 outside write(s) recorded before ")
    assert list(OutsideWrite.objects.values_list("pk", flat=True)) == [second.pk]
    assert first.pk != second.pk


def test_the_command_in_a_shell_exits_0_and_2():
    assert manage("outside_writes").returncode == 0
    assert manage("outside_writes", "--since", "x").returncode == 2


# -- the admin -------------------------------------------------------------------------------------


def test_the_admin_list_is_read_only_for_everyone_and_filters_and_searches(outside, small_fleet):
    host, other, (node, _), _image = small_fleet
    write(outside, "UPDATE hosts_host SET node_count = 5 WHERE id = %s", host.pk)
    with connect("cleanup.sh") as script:
        write(script, "UPDATE nodes_node SET cpu_cores = 3 WHERE id = %s", node.pk)
    write(outside, "UPDATE hosts_host SET node_count = 1 WHERE id = %s", other.pk)
    on_host, on_node, on_other = OutsideWrite.objects.order_by("id")
    url = reverse("admin:hosts_outsidewrite_changelist")
    client = client_for(staff("hosts.view_outsidewrite"))

    def listed(query=""):
        response = client.get(url + query)
        assert response.status_code == 200
        return {record.pk for record in response.context["cl"].result_list}

    assert listed() == {on_host.pk, on_node.pk, on_other.pk}
    assert listed("?table=nodes_node") == {on_node.pk}
    assert listed("?session_user=nobody") == set()
    assert listed(f"?host={host.pk}") == {on_host.pk, on_node.pk} == listed("?host=h1")
    assert listed(f"?q={str(node.pk)[:13]}") == {on_node.pk}
    assert "node_count 2 -&gt; 5" in client.get(url).content.decode()

    superuser = UserFactory(is_staff=True, is_superuser=True)
    boss = client_for(superuser)
    assert boss.get(reverse("admin:hosts_outsidewrite_add")).status_code == 403
    assert boss.get(reverse("admin:hosts_outsidewrite_delete", args=[on_host.pk])).status_code == 403
    page = boss.get(reverse("admin:hosts_outsidewrite_change", args=[on_host.pk]))
    assert page.status_code == 200 and not page.context["has_change_permission"]
    boss.post(reverse("admin:hosts_outsidewrite_change", args=[on_host.pk]), {"session_user": "forged"})
    assert OutsideWrite.objects.get(pk=on_host.pk).session_user == on_host.session_user
    assert boss.get(url).context["action_form"] is None  # no action, delete_selected included
    assert OutsideWrite.objects.count() == 3


def test_the_counter_audit_page_and_the_drifted_hosts_page_name_the_outside_write(outside, small_fleet):
    host, _other, (node, _), _image = small_fleet
    write(outside, "UPDATE hosts_host SET node_count = 5 WHERE id = %s", host.pk)
    write(outside, "UPDATE nodes_node SET cpu_cores = 3 WHERE id = %s", node.pk)
    host_line, node_line = (write_text(Write.of(record)) for record in OutsideWrite.objects.order_by("id"))
    client = client_for(staff("hosts.view_outsidewrite"))

    audit = client.get(reverse("admin:fleet_audit")).content.decode()
    page = client.get(reverse("admin:hosts_host_change", args=[host.pk])).content.decode()

    assert escape(host_line) in audit and escape(node_line) in audit
    assert audit.count(escape(node_line)) == 2  # under h1's node_cpu_cores and under the node h1-a
    assert escape(outside_writes_url(host.pk)) in audit and escape(outside_writes_url()) in audit
    assert f"nodes: {escape(host_line)}" in page and f"CPU: {escape(node_line)}" in page
    assert escape(outside_writes_url(host.pk)) in page
