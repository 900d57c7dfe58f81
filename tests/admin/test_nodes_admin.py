"""The nodes admin, driven with Django's test client: the list, the bulk upgrade (choose an
image, plan, confirm), adding and deleting nodes through the services, images and history."""

import pytest
from django.urls import reverse

from hosts.models import Host
from nodes.models import Command, Image, Node, NodeLog, NodeState
from tests.admin.conftest import action_names, client_for, messages_of, post_action, staff
from tests.factories import GiB, HostFactory, ImageFactory, ImagePropertyFactory, place_node
from tests.hosts.drift import set_counter

pytestmark = pytest.mark.django_db

NODES = "admin:nodes_node_changelist"


def images():
    """ethereum 1.0 (2 cores, 8 GiB, 500 GiB) and 2.0 (the same but 16 GiB), bitcoin 26.0."""
    old = ImageFactory(protocol="ethereum", version="1.0", min_cpu_cores=2, min_memory_bytes=8 * GiB)
    new = ImageFactory(protocol="ethereum", version="2.0", min_cpu_cores=2, min_memory_bytes=16 * GiB)
    bitcoin = ImageFactory(protocol="bitcoin", version="26.0")
    return old, new, bitcoin


def written() -> tuple[int, int]:
    return NodeLog.objects.count(), Command.objects.count()


# ---------------------------------------------------------------------------------------------
# The list


def test_node_list_shows_host_image_protocol_and_allocation_in_human_units():
    old, _new, _bitcoin = images()
    place_node(host=HostFactory(name="host-7"), image=old, name="node-a")
    response = client_for(staff()).get(reverse(NODES))
    row = response.content.decode()
    assert response.status_code == 200
    for text in ("node-a", "host-7", "ethereum@1.0", "ethereum", "2 cores", "8.0 GiB", "500.0 GiB", "Running"):
        assert text in row


def _fleet(hosts: int, nodes_per_host: int, image):
    for _ in range(hosts):
        host = HostFactory()
        for _ in range(nodes_per_host):
            place_node(host=host, image=image)


@pytest.mark.parametrize(
    "query", ["", "?protocol=ethereum", "?host=host-9999", "?q=node", "?state__exact=running"], ids=repr
)
def test_node_list_runs_the_same_queries_whatever_the_number_of_rows(query, django_assert_max_num_queries):
    old, _new, _bitcoin = images()
    client = client_for(staff())
    _fleet(2, 2, old)
    with django_assert_max_num_queries(12) as small:
        assert client.get(reverse(NODES) + query).status_code == 200
    _fleet(6, 10, old)
    with django_assert_max_num_queries(len(small)):
        assert client.get(reverse(NODES) + query).status_code == 200


def test_node_list_filters_by_host_protocol_and_image_and_searches_name_and_id():
    old, new, bitcoin = images()
    host = HostFactory(name="host-7")
    a = place_node(host=host, image=old, name="node-a")
    b = place_node(host=HostFactory(), image=new, name="node-b")
    c = place_node(host=host, image=bitcoin, name="coin-c")
    client = client_for(staff())

    def listed(query):
        return {node.name for node in client.get(reverse(NODES) + query).context["cl"].result_list}

    assert listed("?host=host-7") == {a.name, c.name}
    assert listed(f"?host={host.pk}") == {a.name, c.name}
    assert listed("?protocol=ethereum") == {a.name, b.name}
    assert listed(f"?image__id__exact={new.pk}") == {b.name}
    assert listed("?q=node-") == {a.name, b.name}
    assert listed(f"?q={c.pk}") == {c.name}


def test_unfiltered_node_list_of_a_big_table_shows_an_estimate_without_counting(analyzed, queries, settings):
    old, _new, _bitcoin = images()
    _fleet(3, 10, old)
    analyzed("nodes_node")
    settings.ADMIN_EXACT_COUNT_BELOW = 10  # 30 rows make a "big" table here
    client = client_for(staff())
    with queries() as statements:
        response = client.get(reverse(NODES))
    assert response.context["cl"].paginator.estimated
    assert response.context["cl"].result_count == 30
    assert "about 30" in response.content.decode()
    assert not [sql for sql in statements if "COUNT(" in sql.upper() and "nodes_node" in sql]

    filtered = client.get(reverse(NODES) + "?protocol=ethereum")
    assert not filtered.context["cl"].paginator.estimated  # a filtered list is counted exactly
    assert filtered.context["cl"].result_count == 30


# ---------------------------------------------------------------------------------------------
# Upgrade: gating


def test_upgrade_action_is_offered_only_to_users_with_the_upgrade_permission():
    old, new, _bitcoin = images()
    node = place_node(host=HostFactory(), image=old)
    without = client_for(staff())
    assert "upgrade_selected" not in action_names(without.get(reverse(NODES)))
    with_permission = client_for(staff("nodes.upgrade_node"))
    assert "upgrade_selected" in action_names(with_permission.get(reverse(NODES)))

    response = post_action(without, NODES, "upgrade_selected", [node.pk], step="apply", image=str(new.pk))
    node.refresh_from_db()
    assert response.status_code == 200  # the changelist again, with "No action selected."
    assert node.image_id == old.pk
    assert written() == (2, 1)  # only the creation (NodeLog created + create_succeeded, §9)


def test_upgrade_of_nodes_of_several_protocols_is_refused_with_a_clear_message():
    old, _new, bitcoin = images()
    host = HostFactory()
    nodes = [place_node(host=host, image=old), place_node(host=host, image=bitcoin)]
    response = post_action(client_for(staff("nodes.upgrade_node")), NODES, "upgrade_selected", [n.pk for n in nodes])
    assert response.status_code == 302
    assert messages_of(response) == [
        "The selected nodes run 2 protocols (bitcoin, ethereum): an upgrade moves nodes to another image of "
        "their own protocol. Select nodes of one protocol (filter by protocol) and try again."
    ]


def test_choose_page_offers_only_images_of_the_selected_nodes_protocol():
    old, new, _bitcoin = images()
    other = ImageFactory(protocol="ethereum", version="3.0")
    node = place_node(host=HostFactory(), image=old)
    response = post_action(client_for(staff("nodes.upgrade_node")), NODES, "upgrade_selected", [node.pk])
    assert response.status_code == 200
    assert set(response.context["form"].fields["image"].queryset) == {old, new, other}
    assert "force" not in response.context["form"].fields  # no hosts.overcommit_host
    assert "1 of the selected nodes already runs it" in response.content.decode()


# ---------------------------------------------------------------------------------------------
# Upgrade: plan


def test_plan_counts_earlier_rows_of_the_same_host_and_writes_nothing():
    old, new, _bitcoin = images()
    host = HostFactory(name="host-2", memory_bytes=3 * 8 * GiB + 12 * GiB)  # room for one +8 GiB, not two
    nodes = [place_node(host=host, image=old, name=f"node-{n}") for n in (1, 2, 3)]
    before = written()
    response = post_action(
        client_for(staff("nodes.upgrade_node")),
        NODES,
        "upgrade_selected",
        [n.pk for n in nodes],
        step="plan",
        image=str(new.pk),
    )
    rows = response.context["rows"]
    assert [(row["node"].name, row["status"]) for row in rows] == [
        ("node-1", "fits"),
        ("node-2", "fails"),
        ("node-3", "fails"),
    ]
    assert rows[1]["reason"] == "not enough memory on host-2 (needs 8.0 GiB, 4.0 GiB free)"
    assert [free["amount"] for free in rows[0]["free_after"]] == ["58 cores", "4.0 GiB", "6.5 TiB"]
    assert rows[0]["changes"][1] == {
        "label": "memory",
        "old": "8.0 GiB",
        "new": "16.0 GiB",
        "grows": True,
        "fits": True,
    }
    assert "node-2" in response.content.decode() and "Confirm: upgrade 1 node" in response.content.decode()
    assert written() == before
    host.refresh_from_db()
    assert host.node_memory_bytes == 3 * 8 * GiB
    assert set(Node.objects.values_list("image_id", flat=True)) == {old.pk}


def test_plan_says_whether_each_row_would_apply_and_claims_no_fit_past_an_earlier_error():
    old, _new, _bitcoin = images()
    small = ImageFactory(protocol="ethereum", version="0.9", min_cpu_cores=1)
    fine, drifted = HostFactory(name="host-fine"), HostFactory(name="host-drifted")
    nodes = [place_node(host=fine, image=old, name="node-a"), place_node(host=drifted, image=old, name="node-b")]
    Host.objects.filter(pk=drifted.pk).update(node_cpu_cores=0)  # shrinking 2 -> 1 core would go below zero

    response = post_action(
        client_for(staff("nodes.upgrade_node")),
        NODES,
        "upgrade_selected",
        [n.pk for n in nodes],
        step="plan",
        image=str(small.pk),
    )

    rows = {row["node"].name: row for row in response.context["rows"]}
    assert (rows["node-a"]["would_apply"], rows["node-a"]["status"]) == (True, "fits")
    assert {change["fits"] for change in rows["node-a"]["changes"]} == {True}
    assert (rows["node-b"]["would_apply"], rows["node-b"]["status"]) == (False, "fails")
    assert {change["fits"] for change in rows["node-b"]["changes"]} == {None}  # drift, not capacity
    page = response.content.decode()
    assert page.count('data-would-apply="true"') == 1 and page.count('data-would-apply="false"') == 1
    assert "✗ would not apply" in page and "✓ would apply: fits" in page


def test_plan_with_force_places_past_capacity_only_for_users_who_may_overcommit():
    old, new, _bitcoin = images()
    host = HostFactory(memory_bytes=8 * GiB)
    node = place_node(host=host, image=old)
    may_force = client_for(staff("nodes.upgrade_node", "hosts.overcommit_host"))
    response = post_action(may_force, NODES, "upgrade_selected", [node.pk], step="plan", image=str(new.pk), force="on")
    assert [row["status"] for row in response.context["rows"]] == ["forced"]
    assert response.context["rows"][0]["free_after"][1] == {"label": "memory", "amount": "8.0 GiB", "over": True}

    may_not = client_for(staff("nodes.upgrade_node"))
    response = post_action(may_not, NODES, "upgrade_selected", [node.pk], step="plan", image=str(new.pk), force="on")
    assert [row["status"] for row in response.context["rows"]] == ["fails"]


# ---------------------------------------------------------------------------------------------
# Upgrade: confirm


def test_confirm_upgrades_each_node_and_sums_up_in_one_message():
    old, new, _bitcoin = images()
    big, small = HostFactory(name="host-big"), HostFactory(name="host-7", memory_bytes=12 * GiB)
    upgraded = [place_node(host=big, image=old, name=f"node-{n}") for n in "abc"]
    skipped = place_node(host=big, image=new, name="node-d")
    failing = place_node(host=small, image=old, name="node-x")
    user = staff("nodes.upgrade_node")
    client = client_for(user, csrf=True)
    ids = [n.pk for n in [*upgraded, skipped, failing]]

    response = post_action(client, NODES, "upgrade_selected", ids, step="apply", image=str(new.pk))

    assert response.status_code == 302
    assert messages_of(response) == [
        "3 upgrades started; their hosts will report. 1 skipped (already on the image). 1 failed: node-x: "
        "not enough memory on host-7 (needs 8.0 GiB, 4.0 GiB free)"
    ]
    big.refresh_from_db()
    assert big.node_memory_bytes == 4 * 16 * GiB
    for node in upgraded:
        node.refresh_from_db()
        assert (node.image_id, node.memory_bytes, node.state) == (new.pk, 16 * GiB, NodeState.UPGRADING)
    failing.refresh_from_db()
    assert failing.image_id == old.pk
    logs = NodeLog.objects.filter(event="upgrade_started")
    assert {(log.node_name, log.source, log.actor_id) for log in logs} == {(n.name, "admin", user.pk) for n in upgraded}


def test_confirm_without_csrf_token_is_refused_and_writes_nothing():
    old, new, _bitcoin = images()
    node = place_node(host=HostFactory(), image=old)
    client = client_for(staff("nodes.upgrade_node"), csrf=True)
    before = written()
    response = post_action(
        client, NODES, "upgrade_selected", [node.pk], csrf_token=False, step="apply", image=str(new.pk)
    )
    assert response.status_code == 403
    node.refresh_from_db()
    assert node.image_id == old.pk
    assert written() == before


def test_plan_and_choose_pages_carry_a_csrf_token_that_the_confirm_accepts():
    old, new, _bitcoin = images()
    node = place_node(host=HostFactory(), image=old)
    client = client_for(staff("nodes.upgrade_node"), csrf=True)
    plan = post_action(client, NODES, "upgrade_selected", [node.pk], step="plan", image=str(new.pk))
    assert 'name="csrfmiddlewaretoken"' in plan.content.decode()
    confirm = post_action(client, NODES, "upgrade_selected", [node.pk], step="apply", image=str(new.pk))
    assert messages_of(confirm) == ["1 upgrade started; the host will report"]  # the node shows upgrading


def test_selection_past_the_limit_is_refused(monkeypatch):
    monkeypatch.setattr("nodes.admin.nodes.MAX_NODES", 2)
    old, _new, _bitcoin = images()
    host = HostFactory()
    nodes = [place_node(host=host, image=old) for _ in range(3)]
    response = post_action(client_for(staff("nodes.upgrade_node")), NODES, "upgrade_selected", [n.pk for n in nodes])
    assert messages_of(response) == ["Select at most 2 nodes for one operation (filter the list to narrow it down)."]


# ---------------------------------------------------------------------------------------------
# Add and delete, through the services


def test_adding_a_node_goes_through_node_create():
    old, _new, _bitcoin = images()
    ImagePropertyFactory(image=old, key="rpc", default_value="off", add_cpu_cores=1, add_memory_bytes=2 * GiB)
    host = HostFactory()
    user = staff("nodes.add_node")
    client = client_for(user, csrf=True)
    response = client.post(
        reverse("admin:nodes_node_add"),
        {
            "name": "node-new",
            "host": str(host.pk),
            "image": str(old.pk),
            "properties": '{"rpc": "on"}',
            "csrfmiddlewaretoken": client.cookies["csrftoken"].value,
        },
    )
    assert response.status_code == 302
    node = Node.objects.get(name="node-new")
    assert (node.cpu_cores, node.memory_bytes, node.properties) == (3, 10 * GiB, {"rpc": "on"})
    host.refresh_from_db()
    assert (host.node_count, host.node_cpu_cores, host.node_memory_bytes) == (1, 3, 10 * GiB)
    assert NodeLog.objects.get(node_id=node.pk).source == "admin"
    assert f"Node node-new placed on {host.name}: 3 cores, 10.0 GiB, 500.0 GiB." in messages_of(response)


def test_adding_a_node_that_does_not_fit_shows_the_services_reason_on_the_form():
    old, _new, _bitcoin = images()
    host = HostFactory(name="host-7", memory_bytes=4 * GiB)
    response = client_for(staff("nodes.add_node")).post(
        reverse("admin:nodes_node_add"),
        {"name": "node-new", "host": str(host.pk), "image": str(old.pk), "properties": '{"nope": "1"}'},
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["properties"] == ["Unknown key for ethereum@1.0: nope."]

    response = client_for(staff("nodes.add_node")).post(
        reverse("admin:nodes_node_add"), {"name": "node-new", "host": str(host.pk), "image": str(old.pk)}
    )
    assert response.context["adminform"].form.non_field_errors() == [
        "not enough memory on host-7 (needs 8.0 GiB, 4.0 GiB free)"
    ]
    assert not Node.objects.exists()
    assert Host.objects.get(pk=host.pk).node_count == 0


def test_force_is_on_the_add_form_only_for_users_who_may_overcommit():
    images()
    form = client_for(staff("nodes.add_node")).get(reverse("admin:nodes_node_add")).context["adminform"].form
    assert "force" not in form.fields
    form = client_for(staff("nodes.add_node", "hosts.overcommit_host")).get(reverse("admin:nodes_node_add"))
    assert "force" in form.context["adminform"].form.fields


def test_deleting_one_node_goes_through_node_delete():
    old, _new, _bitcoin = images()
    host = HostFactory()
    node = place_node(host=host, image=old)
    client = client_for(staff("nodes.delete_node"), csrf=True)
    response = client.post(
        reverse("admin:nodes_node_delete", args=[node.pk]),
        {"post": "yes", "csrfmiddlewaretoken": client.cookies["csrftoken"].value},
    )
    assert response.status_code == 302
    assert not Node.objects.exists()
    host.refresh_from_db()
    assert host.counters() == {"node_count": 0, "node_cpu_cores": 0, "node_memory_bytes": 0, "node_disk_bytes": 0}
    assert NodeLog.objects.filter(event="deleted", source="admin").count() == 1


def test_bulk_delete_confirms_then_deletes_each_node_through_the_service():
    old, _new, _bitcoin = images()
    host = HostFactory()
    nodes = [place_node(host=host, image=old) for _ in range(3)]
    client = client_for(staff("nodes.delete_node"), csrf=True)
    confirm = post_action(client, NODES, "delete_selected", [n.pk for n in nodes[:2]])
    assert confirm.status_code == 200 and Node.objects.count() == 3
    response = post_action(client, NODES, "delete_selected", [n.pk for n in nodes[:2]], post="yes")
    assert messages_of(response) == ["2 deleted"]
    host.refresh_from_db()
    assert (host.node_count, host.node_memory_bytes) == (1, 8 * GiB)
    assert Command.objects.filter(kind="node_delete").count() == 2


def test_bulk_delete_is_not_offered_without_the_delete_permission():
    old, _new, _bitcoin = images()
    node = place_node(host=HostFactory(), image=old)
    client = client_for(staff())
    assert "delete_selected" not in action_names(client.get(reverse(NODES)))
    post_action(client, NODES, "delete_selected", [node.pk], post="yes")
    assert Node.objects.filter(pk=node.pk).exists()


def test_node_page_is_read_only_and_shows_its_history():
    old, new, _bitcoin = images()
    from nodes.changes import node_upgrade

    node = place_node(host=HostFactory(), image=old)
    node_upgrade(node_id=node.pk, image_id=new.pk)
    client = client_for(staff("nodes.change_node"))
    page = client.get(reverse("admin:nodes_node_change", args=[node.pk])).content.decode()
    assert "ethereum@1.0 → ethereum@2.0" in page
    assert "2 cores, 8.0 GiB, 500.0 GiB → 2 cores, 16.0 GiB, 500.0 GiB" in page
    response = client.post(reverse("admin:nodes_node_change", args=[node.pk]), {"name": "renamed", "state": "running"})
    assert response.status_code == 403
    node.refresh_from_db()
    assert node.name != "renamed"


# ---------------------------------------------------------------------------------------------
# Images


def test_image_in_use_has_its_requirements_and_properties_read_only():
    old, _new, _bitcoin = images()
    ImagePropertyFactory(image=old, key="rpc", default_value="off", add_memory_bytes=2 * GiB)
    image_perms = [f"nodes.{verb}_{model}" for verb in ("change", "delete") for model in ("image", "imageproperty")]
    client = client_for(staff(*image_perms, "nodes.add_imageproperty"))
    url = reverse("admin:nodes_image_change", args=[old.pk])
    free = client.get(url)
    assert "min_memory_bytes" in free.context["adminform"].form.fields
    assert free.context["inline_admin_formsets"][0].has_add_permission

    place_node(host=HostFactory(), image=old)
    page = client.get(url)
    assert "min_memory_bytes" not in page.context["adminform"].form.fields
    inline = page.context["inline_admin_formsets"][0]
    assert not inline.has_add_permission and not inline.has_delete_permission
    assert "0 cores, 2.0 GiB, 0 B" in page.content.decode()
    assert client.post(reverse("admin:nodes_image_delete", args=[old.pk]), {"post": "yes"}).status_code == 403


# ---------------------------------------------------------------------------------------------
# History lists


@pytest.mark.parametrize("changelist", ["admin:nodes_nodelog_changelist", "admin:nodes_command_changelist"])
def test_history_lists_are_read_only_searchable_by_node_id_and_constant_in_queries(
    changelist, django_assert_max_num_queries
):
    old, new, _bitcoin = images()
    host = HostFactory(memory_bytes=1024 * GiB, disk_bytes=64 * 1024 * GiB)
    first = place_node(host=host, image=old)
    client = client_for(staff())
    with django_assert_max_num_queries(12) as small:
        response = client.get(reverse(changelist))
    assert response.context["has_add_permission"] is False
    for _ in range(20):
        place_node(host=host, image=new)
    with django_assert_max_num_queries(len(small)):
        client.get(reverse(changelist))
    found = client.get(reverse(changelist) + f"?q={first.pk}").context["cl"].result_list
    assert {entry.node_id for entry in found} == {first.pk}  # NodeLog: created + create_succeeded (§9)


def test_delete_refused_by_the_service_is_shown_and_changes_nothing():
    old, _new, _bitcoin = images()
    host = HostFactory(name="host-7")
    node, other = place_node(host=host, image=old, name="node-a"), place_node(host=host, image=old, name="node-b")
    set_counter(host, "node_memory_bytes", -12 * GiB)  # 4 GiB recorded for 16 GiB of nodes
    client = client_for(staff("nodes.delete_node"))

    response = client.post(reverse("admin:nodes_node_delete", args=[node.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert "Counter node_memory_bytes of host host-7 would go below zero" in messages_of(response)[0]
    assert Node.objects.count() == 2

    response = post_action(client, NODES, "delete_selected", [node.pk, other.pk], post="yes")
    summary = messages_of(response)[-1]  # after the single delete's message, never displayed
    assert summary.startswith("0 deleted, 2 failed: node-a: Counter node_memory_bytes of host host-7")
    assert Node.objects.count() == 2


def test_upgrade_button_on_a_node_page_only_with_the_upgrade_permission():
    old, _new, _bitcoin = images()
    node = place_node(host=HostFactory(), image=old)
    url = reverse("admin:nodes_node_change", args=[node.pk])
    assert 'id="upgrade-this-node"' not in client_for(staff()).get(url).content.decode()
    assert 'id="upgrade-this-node"' in client_for(staff("nodes.upgrade_node")).get(url).content.decode()


def test_images_in_use_cannot_be_bulk_deleted():
    old, new, _bitcoin = images()
    place_node(host=HostFactory(), image=old)
    client = client_for(staff("nodes.delete_image"))
    page = post_action(client, "admin:nodes_image_changelist", "delete_selected", [old.pk, new.pk])
    assert "ethereum@1.0: run by 1 node(s)" in page.content.decode()
    post_action(client, "admin:nodes_image_changelist", "delete_selected", [old.pk, new.pk], post="yes")
    assert Image.objects.filter(pk__in=[old.pk, new.pk]).count() == 2


def test_add_form_lists_the_hosts_of_a_small_fleet_and_searches_those_of_a_big_one(monkeypatch):
    images()
    HostFactory(name="host-a")
    HostFactory(name="host-b")
    client = client_for(staff("nodes.add_node"))
    small = client.get(reverse("admin:nodes_node_add"))
    assert ">host-a</option>" in small.content.decode()
    monkeypatch.setattr("nodes.admin.forms.HOSTS_IN_A_SELECT", 1)
    big = client.get(reverse("admin:nodes_node_add"))
    assert "admin-autocomplete" in big.content.decode()
    assert ">host-a</option>" not in big.content.decode()


def test_image_protocol_version_and_property_keys_with_control_characters_are_refused():
    client = client_for(staff("nodes.add_image", "nodes.add_imageproperty"))
    inline = {
        "properties-TOTAL_FORMS": "1",
        "properties-INITIAL_FORMS": "0",
        "properties-MIN_NUM_FORMS": "0",
        "properties-MAX_NUM_FORMS": "1000",
        "properties-0-key": "sync\nmode",
        "properties-0-default_value": "snap",
    }
    image = {
        "protocol": "eth\x1b[2K",
        "version": "1.0\n",
        "min_cpu_cores": "1",
        "min_memory_bytes": "1",
        "min_disk_bytes": "1",
    }

    response = client.post(reverse("admin:nodes_image_add"), {**image, **inline})

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "Control or invisible characters" in errors["protocol"][0]
    assert "version" not in errors  # surrounding whitespace is stripped, as by every CharField
    assert "Control or invisible characters" in response.context["inline_admin_formsets"][0].formset.errors[0]["key"][0]
    assert not Image.objects.exists()
