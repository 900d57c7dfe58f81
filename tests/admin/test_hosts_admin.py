"""The hosts admin, driven with Django's test client: the list (usage bars, drift badge, filters,
constant queries), the audit and repair actions, the host page, and the counter audit page."""

import re

import pytest
from django.db import connection
from django.urls import reverse

from config.db import BUSY_DETAIL
from config.units import BIGINT_MAX
from hosts.admin.hosts import HostAdmin
from hosts.models import COUNTER_FIELDS, HOST_INPUT_FIELDS, CounterRepair, Host
from nodes.models import Node
from tests.admin.conftest import action_names, client_for, messages_of, post_action, staff
from tests.factories import GiB, HostFactory, ImageFactory, TiB, UserFactory, place_node
from tests.hosts.drift import set_counter, sql
from tests.support import host_lock_held

pytestmark = pytest.mark.django_db

HOSTS = "admin:hosts_host_changelist"
AUDIT = "admin:fleet_audit"


def badges(page: str) -> list[str]:
    """The host names whose row carries the drift badge."""
    return re.findall(r'<a href="[^"]+">([^<]+) <span class="nf-badge nf-badge-drift"', page)


def fleet():
    """host-1 (clean, 2 nodes), host-2 (drifted: node_count and memory), host-3 (empty)."""
    image = ImageFactory(min_cpu_cores=4, min_memory_bytes=8 * GiB, min_disk_bytes=TiB)
    clean, drifted = HostFactory(name="host-1"), HostFactory(name="host-2")
    HostFactory(name="host-3")
    for host in (clean, clean, drifted):
        place_node(host=host, image=image)
    set_counter(drifted, "node_count", 2)
    set_counter(drifted, "node_memory_bytes", -4 * GiB)
    return clean, drifted


# ---------------------------------------------------------------------------------------------
# The list


def test_host_list_shows_used_and_capacity_in_human_units_with_a_bar():
    fleet()
    page = client_for(staff()).get(reverse(HOSTS)).content.decode()
    assert "8 / 64 cores" in page
    assert "16.0 GiB / 256.0 GiB" in page
    assert "2.0 TiB / 8.0 TiB" in page
    assert 'class="nf-fill" style="width: 12.5%"' in page  # 8 of 64 cores
    assert "hosts/admin.css" in page


def test_drift_badge_marks_drifted_rows_only():
    _clean, _drifted = fleet()
    page = client_for(staff()).get(reverse(HOSTS)).content.decode()
    assert badges(page) == ["host-2"]
    assert "nodes 3, nodes say 1; memory 4.0 GiB, nodes say 8.0 GiB" in page


@pytest.mark.parametrize("query", ["", "?drift=yes", "?over_capacity=yes", "?q=host"], ids=repr)
def test_host_list_runs_the_same_queries_whatever_the_number_of_rows(query, django_assert_max_num_queries):
    fleet()
    client = client_for(staff())
    with django_assert_max_num_queries(10) as small:
        assert client.get(reverse(HOSTS) + query).status_code == 200
    image = ImageFactory()
    for _ in range(30):
        host = HostFactory()
        place_node(host=host, image=image)
        set_counter(host, "node_count", 1)  # drifted: every row computes its badge
    with django_assert_max_num_queries(len(small)):
        assert client.get(reverse(HOSTS) + query).status_code == 200


def test_drift_badge_is_computed_in_the_lists_one_query(queries):
    fleet()
    client = client_for(staff())
    with queries() as statements:
        client.get(reverse(HOSTS))
    host_selects = [sql for sql in statements if sql.startswith("SELECT") and '"hosts_host"."name"' in sql]
    assert len(host_selects) == 1
    assert "nodes_node" in host_selects[0]  # the expected counters, as subqueries of that query


def test_host_list_filters_drifted_and_over_capacity_and_searches():
    clean, _drifted = fleet()
    set_counter(clean, "node_cpu_cores", 100)  # 108 of 64 cores: over capacity (and drifted)
    client = client_for(staff())

    def listed(query):
        return [host.name for host in client.get(reverse(HOSTS) + query).context["cl"].result_list]

    assert listed("?drift=yes") == ["host-1", "host-2"]
    assert listed("?drift=no") == ["host-3"]
    assert listed("?over_capacity=yes") == ["host-1"]
    assert listed("?over_capacity=no") == ["host-2", "host-3"]
    assert listed("?q=host-2") == ["host-2"]
    assert listed(f"?q={clean.pk}") == ["host-1"]


# ---------------------------------------------------------------------------------------------
# Host page: counters read-only, capacity saved without them


def test_host_page_shows_counters_read_only_and_saving_capacity_keeps_them():
    clean, _drifted = fleet()
    client = client_for(staff("hosts.change_host"), csrf=True)
    url = reverse("admin:hosts_host_change", args=[clean.pk])
    form = client.get(url).context["adminform"].form
    # §11: capacity, reserve, ratios, slots, region and scheduling; never a counter.
    assert set(form.fields) == set(HOST_INPUT_FIELDS)
    assert not set(form.fields) & set(COUNTER_FIELDS)
    response = client.post(
        url,
        {
            "name": "host-1",
            "cpu_cores": 128,
            "memory_bytes": 512 * GiB,
            "disk_bytes": 8 * TiB,
            "node_count": 0,
            "node_memory_bytes": 0,
            "csrfmiddlewaretoken": client.cookies["csrftoken"].value,
        },
    )
    assert response.status_code == 302
    clean.refresh_from_db()
    assert (clean.cpu_cores, clean.memory_bytes) == (128, 512 * GiB)
    assert (clean.node_count, clean.node_memory_bytes) == (2, 16 * GiB)


def test_saving_a_host_never_writes_back_counters_read_before_a_node_operation(rf):
    clean, _drifted = fleet()
    stale = Host.objects.get(pk=clean.pk)  # the admin read the host...
    place_node(host=clean, image=ImageFactory())  # ...then a node was placed on it
    model_admin = HostAdmin(Host, admin_site=None)
    form = model_admin.form(
        data={"name": "host-1", "cpu_cores": 96, "memory_bytes": stale.memory_bytes, "disk_bytes": stale.disk_bytes},
        instance=stale,
    )
    assert form.is_valid()
    model_admin.save_model(rf.post("/"), form.save(commit=False), form, change=True)
    clean.refresh_from_db()
    assert clean.cpu_cores == 96
    assert clean.node_count == 3


# ---------------------------------------------------------------------------------------------
# Audit counters


def test_audit_action_lists_findings_and_writes_nothing():
    clean, drifted = fleet()
    client = client_for(staff())
    assert action_names(client.get(reverse(HOSTS))) == {"audit_counters"}
    response = post_action(client, HOSTS, "audit_counters", [clean.pk, drifted.pk], index="0")
    assert response.status_code == 200
    assert [
        (row["host_name"], [(c["label"], c["old"], c["new"]) for c in row["counters"]])
        for row in response.context["rows"]
    ] == [("host-2", [("nodes", "3", "1"), ("memory", "4.0 GiB", "8.0 GiB")])]
    assert 'id="review-repair"' not in response.content.decode()  # no repair permission
    drifted.refresh_from_db()
    assert drifted.node_count == 3
    assert not CounterRepair.objects.exists()


def test_audit_action_needs_the_view_permission():
    clean, _drifted = fleet()
    client = client_for(UserFactory(is_staff=True, permissions=["nodes.view_node"]))
    response = post_action(client, HOSTS, "audit_counters", [clean.pk], index="0")
    assert response.status_code == 403


# ---------------------------------------------------------------------------------------------
# Repair counters


def test_repair_action_is_offered_only_with_the_repair_permission():
    _clean, drifted = fleet()
    without = client_for(staff("hosts.change_host"))
    assert "repair_counters" not in action_names(without.get(reverse(HOSTS)))
    post_action(without, HOSTS, "repair_counters", [drifted.pk], step="apply")
    drifted.refresh_from_db()
    assert drifted.node_count == 3
    assert "repair_counters" in action_names(client_for(staff("hosts.repair_counters")).get(reverse(HOSTS)))


def test_repair_confirmation_lists_old_and_new_and_writes_nothing():
    clean, drifted = fleet()
    client = client_for(staff("hosts.repair_counters"), csrf=True)
    response = post_action(client, HOSTS, "repair_counters", [clean.pk, drifted.pk], index="0")
    assert response.status_code == 200
    page = response.content.decode()
    assert "The counters of 1 of the 2 selected hosts disagree with their nodes" in page
    assert [(c["label"], c["old"], c["new"]) for c in response.context["rows"][0]["counters"]] == [
        ("nodes", "3", "1"),
        ("memory", "4.0 GiB", "8.0 GiB"),
    ]
    assert 'name="csrfmiddlewaretoken"' in page
    drifted.refresh_from_db()
    assert drifted.node_count == 3
    assert not CounterRepair.objects.exists()


def test_confirmed_repair_sets_counters_to_the_truth_and_records_it():
    clean, drifted = fleet()
    user = staff("hosts.repair_counters")
    client = client_for(user, csrf=True)
    response = post_action(client, HOSTS, "repair_counters", [clean.pk, drifted.pk], step="apply")
    assert response.status_code == 302
    assert messages_of(response) == ["Repaired 1 host(s): host-2 (nodes 3 → 1, memory 4.0 GiB → 8.0 GiB)."]
    drifted.refresh_from_db()
    assert (drifted.node_count, drifted.node_memory_bytes) == (1, 8 * GiB)
    repair = CounterRepair.objects.get()
    assert (repair.host_id, repair.actor_id, repair.source, repair.old_node_count, repair.new_node_count) == (
        drifted.pk,
        user.pk,
        "admin",
        3,
        1,
    )


def test_confirmed_repair_without_csrf_token_is_refused():
    _clean, drifted = fleet()
    client = client_for(staff("hosts.repair_counters"), csrf=True)
    response = post_action(client, HOSTS, "repair_counters", [drifted.pk], csrf_token=False, step="apply")
    assert response.status_code == 403
    drifted.refresh_from_db()
    assert drifted.node_count == 3


def test_repair_of_clean_hosts_says_there_is_nothing_to_repair():
    clean, _drifted = fleet()
    client = client_for(staff("hosts.repair_counters"))
    response = post_action(client, HOSTS, "repair_counters", [clean.pk], index="0")
    assert 'id="nothing-to-repair"' in response.content.decode()


# ---------------------------------------------------------------------------------------------
# The counter audit page


def test_audit_page_is_linked_from_the_index_for_staff_who_may_view_hosts():
    page = client_for(staff()).get(reverse("admin:index")).content.decode()
    assert f'href="{reverse(AUDIT)}"' in page
    stranger = client_for(UserFactory(is_staff=True))
    assert reverse(AUDIT) not in stranger.get(reverse("admin:index")).content.decode()
    assert stranger.get(reverse(AUDIT)).status_code == 403


def test_audit_page_lists_host_node_and_capacity_findings():
    clean, drifted = fleet()
    node = Node.objects.filter(host=clean).first()
    Node.objects.filter(pk=node.pk).update(cpu_cores=5)  # recorded 5, its config requires 4
    set_counter(clean, "node_cpu_cores", 1)  # ...and the host counts it
    Host.objects.filter(pk=drifted.pk).update(memory_bytes=4 * GiB)  # its node's 8 GiB exceed it
    response = client_for(staff()).get(reverse(AUDIT))
    assert [row["host_name"] for row in response.context["host_rows"]] == ["host-2"]
    assert [(r["node_name"], r["label"], r["recorded"], r["expected"]) for r in response.context["node_rows"]] == [
        (node.name, "CPU", "5 cores", "4 cores")
    ]
    assert [(w["host_name"], w["label"], w["allocated"], w["capacity"]) for w in response.context["warnings"]] == [
        ("host-2", "memory", "8.0 GiB", "4.0 GiB")
    ]
    assert 'id="repair-button"' not in response.content.decode()


def test_audit_page_repair_button_repairs_the_listed_hosts():
    _clean, drifted = fleet()
    client = client_for(staff("hosts.repair_counters"), csrf=True)
    page = client.get(reverse(AUDIT))
    assert 'id="repair-button"' in page.content.decode()
    response = client.post(
        reverse(AUDIT), {"host": [str(drifted.pk)], "csrfmiddlewaretoken": client.cookies["csrftoken"].value}
    )
    assert response.status_code == 302
    assert messages_of(response) == ["Repaired 1 host(s): host-2 (nodes 3 → 1, memory 4.0 GiB → 8.0 GiB)."]
    assert client.get(reverse(AUDIT)).context["host_rows"] == []


def test_audit_page_repair_needs_the_permission_and_a_csrf_token():
    _clean, drifted = fleet()
    viewer = client_for(staff(), csrf=True)
    token = viewer.cookies["csrftoken"].value
    assert viewer.post(reverse(AUDIT), {"host": [str(drifted.pk)], "csrfmiddlewaretoken": token}).status_code == 403
    repairer = client_for(staff("hosts.repair_counters"), csrf=True)
    assert repairer.post(reverse(AUDIT), {"host": [str(drifted.pk)]}).status_code == 403
    drifted.refresh_from_db()
    assert drifted.node_count == 3


def test_repair_history_is_a_read_only_searchable_list(django_assert_max_num_queries):
    _clean, drifted = fleet()
    client = client_for(staff("hosts.repair_counters"))
    post_action(client, HOSTS, "repair_counters", [drifted.pk], step="apply")
    with django_assert_max_num_queries(10):
        response = client.get(reverse("admin:hosts_counterrepair_changelist") + "?q=host-2")
    assert [repair.host_id for repair in response.context["cl"].result_list] == [drifted.pk]
    assert "nodes 3 → 1, memory 4.0 GiB → 8.0 GiB" in response.content.decode()
    assert response.context["has_add_permission"] is False


def test_hosts_holding_nodes_cannot_be_deleted():
    clean, _drifted = fleet()
    client = client_for(staff("hosts.delete_host"))
    page = post_action(client, HOSTS, "delete_selected", [clean.pk])
    assert "host-1: holds 2 node(s); delete them first" in page.content.decode()
    post_action(client, HOSTS, "delete_selected", [clean.pk], post="yes")
    assert Host.objects.filter(pk=clean.pk).exists()


def test_a_deep_page_computes_the_expected_counters_of_its_own_rows_only(monkeypatch, queries):
    monkeypatch.setattr(HostAdmin, "list_per_page", 2)
    fleet()  # host-1, host-2 (drifted), host-3
    HostFactory(name="host-4")
    client = client_for(staff())
    with queries() as statements:
        response = client.get(reverse(HOSTS) + "?p=2")
    assert [host.name for host in response.context["cl"].result_list] == ["host-3", "host-4"]
    [page_query] = [sql for sql in statements if sql.startswith('SELECT "hosts_host"."id"')]
    assert re.search(r'WHERE "hosts_host"."id" IN \(SELECT .* LIMIT 2 OFFSET 2\)', page_query)
    assert badges(client.get(reverse(HOSTS) + "?p=1").content.decode()) == ["host-2"]


def test_a_one_page_result_is_fetched_by_the_same_bounded_statement(queries):
    fleet()
    client = client_for(staff())
    with queries() as statements:
        response = client.get(reverse(HOSTS) + "?q=host-2")
    assert [host.name for host in response.context["cl"].result_list] == ["host-2"]
    [page_query] = [sql for sql in statements if sql.startswith('SELECT "hosts_host"."id"')]
    assert re.search(r'WHERE .*"hosts_host"."id" IN \(SELECT .* LIMIT 1\)', page_query)


# ---------------------------------------------------------------------------------------------
# Refusals show as messages, never as a 500


@pytest.fixture
def short_lock_timeout():
    """This session waits 100 ms for a row lock (the requests of the test client run on it)."""
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '100ms'")
    yield
    with connection.cursor() as cursor:
        cursor.execute("RESET lock_timeout")


def overflowing(host):
    """The host's nodes now sum past 2**63-1 of disk (and its node count drifted)."""
    sql("UPDATE nodes_node SET disk_bytes = %s WHERE host_id = %s", BIGINT_MAX - 1, host.pk)
    set_counter(host, "node_count", 5)


def test_repair_from_the_list_reports_a_host_whose_nodes_overflow_and_repairs_the_others():
    clean, drifted = fleet()  # clean holds two nodes
    overflowing(clean)
    client = client_for(staff("hosts.repair_counters"))

    dry_run = post_action(client, HOSTS, "repair_counters", [clean.pk, drifted.pk], index="0")
    assert dry_run.status_code == 200
    assert any(
        message.startswith("host-1 cannot be repaired: The nodes of host host-1 sum to")
        for message in messages_of(dry_run)
    )
    response = post_action(client, HOSTS, "repair_counters", [clean.pk, drifted.pk], step="apply")

    assert response.status_code == 302
    [message] = messages_of(response)
    assert message.startswith(
        "Repaired 1 host(s): host-2 (nodes 3 → 1, memory 4.0 GiB → 8.0 GiB). Not repaired: host-1:"
    )
    assert Host.objects.get(pk=drifted.pk).node_count == 1


def test_audit_page_repair_of_an_overflowing_host_is_a_message():
    clean, _drifted = fleet()
    overflowing(clean)
    client = client_for(staff("hosts.repair_counters"))

    response = client.post(reverse(AUDIT), {"host": [str(clean.pk)]})

    assert response.status_code == 302
    [message] = messages_of(response)
    assert message.startswith("Nothing repaired. Not repaired: host-1: The nodes of host host-1 sum to")


@pytest.mark.django_db(transaction=True)
def test_audit_page_repair_while_the_host_is_locked_answers_busy_as_a_message(short_lock_timeout):
    _clean, drifted = fleet()
    client = client_for(staff("hosts.repair_counters"))

    with host_lock_held(drifted.pk):
        response = client.post(reverse(AUDIT), {"host": [str(drifted.pk)]})

    assert response.status_code == 302
    [message] = messages_of(response)
    assert "Not repaired: host-2: The database could not complete the change now" in message
    assert Host.objects.get(pk=drifted.pk).node_count == 3


@pytest.mark.django_db(transaction=True)
def test_repair_from_the_list_while_the_host_is_locked_answers_busy_as_a_message(short_lock_timeout):
    _clean, drifted = fleet()
    client = client_for(staff("hosts.repair_counters"))

    with host_lock_held(drifted.pk):
        response = post_action(client, HOSTS, "repair_counters", [drifted.pk], step="apply")

    assert response.status_code == 302
    assert "The database could not complete the change now" in messages_of(response)[0]


@pytest.mark.django_db(transaction=True)
def test_saving_a_host_while_it_is_locked_answers_busy_as_a_message(short_lock_timeout):
    host = HostFactory(name="host-9", cpu_cores=8)
    client = client_for(staff("hosts.change_host"))
    url = reverse("admin:hosts_host_change", args=[host.pk])
    form = {
        "name": "host-9",
        "cpu_cores": "16",
        "memory_bytes": str(host.memory_bytes),
        "disk_bytes": str(host.disk_bytes),
    }

    with host_lock_held(host.pk):
        response = client.post(url, form)

    assert response.status_code == 302 and response["Location"] == url
    assert messages_of(response) == [BUSY_DETAIL]
    assert Host.objects.get(pk=host.pk).cpu_cores == 8


def test_a_host_name_with_control_characters_is_refused_by_the_form():
    host = HostFactory(name="host-9")
    client = client_for(staff("hosts.change_host"))
    url = reverse("admin:hosts_host_change", args=[host.pk])
    form = {"cpu_cores": "8", "memory_bytes": str(host.memory_bytes), "disk_bytes": str(host.disk_bytes)}

    response = client.post(url, {**form, "name": "host-9\nhost h1: forged\x1b[2K"})

    assert response.status_code == 200
    assert (
        "Control or invisible characters are not allowed (\\n, \\x1b)."
        in response.context["adminform"].form.errors["name"]
    )
    assert Host.objects.get(pk=host.pk).name == "host-9"
