"""Placement in the nodes admin (§11), driven with Django's test client: the add-node form with
the host optional, and "Place nodes…" — form, plan (nothing written), confirm (one node_create
per node, one summary), refusals with the services' own sentences."""

import pytest
from django.urls import reverse

from config.errors import NoHostAvailable
from hosts.models import Host
from nodes.changes import node_create
from nodes.models import Node, NodeLog
from tests.admin.conftest import client_for, messages_of, staff
from tests.factories import GiB, HostFactory, ImageFactory, TiB

pytestmark = pytest.mark.django_db

PLACE = "admin:nodes_node_place"
ADD = "admin:nodes_node_add"


def fleet():
    """eu-1: eu-a (room for 4 nodes of the image) and eu-b (room for 2); us-1: us-a (room for
    8); eu-c is eu-1 but manual. The image needs 4 cores, 16 GiB, 500 GiB."""
    image = ImageFactory(protocol="ethereum", version="1.14.0", min_cpu_cores=4, min_memory_bytes=16 * GiB)
    HostFactory(name="eu-a", region="eu-1", cpu_cores=16, memory_bytes=256 * GiB, disk_bytes=8 * TiB)
    HostFactory(name="eu-b", region="eu-1", cpu_cores=8, memory_bytes=256 * GiB, disk_bytes=8 * TiB)
    HostFactory(name="eu-c", region="eu-1", scheduling="manual", cpu_cores=64)
    HostFactory(name="us-a", region="us-1", cpu_cores=32, memory_bytes=256 * GiB, disk_bytes=8 * TiB)
    return image


def form_data(image, **overrides) -> dict:
    return {
        "image": str(image.pk),
        "properties": "{}",
        "count": "3",
        "name_prefix": "web",
        "strategy": "binpack",
        "region": "eu-1",
        **overrides,
    }


# ---------------------------------------------------------------------------------------------
# Place nodes…


def test_place_nodes_is_offered_and_answered_only_with_the_add_permission():
    fleet()
    without = client_for(staff())
    assert "Place nodes…" not in without.get(reverse("admin:nodes_node_changelist")).content.decode()
    assert without.get(reverse(PLACE)).status_code == 403
    with_it = client_for(staff("nodes.add_node"))
    page = with_it.get(reverse("admin:nodes_node_changelist")).content.decode()
    assert f'href="{reverse(PLACE)}"' in page and "Place nodes…" in page
    form = with_it.get(reverse(PLACE)).context["form"]
    assert list(form.fields) == [
        "image",
        "properties",
        "count",
        "name_prefix",
        "strategy",
        "region",
        "spread_protocol",
    ]
    assert [value for value, _label in form.fields["region"].choices] == ["", "(none)", "eu-1", "us-1"]


def test_plan_lists_each_node_with_its_host_score_and_free_capacity_after_and_writes_nothing():
    image = fleet()
    response = client_for(staff("nodes.add_node")).post(reverse(PLACE), {**form_data(image), "step": "plan"})
    assert response.status_code == 200
    rows = response.context["rows"]
    # binpack fills the fullest first: eu-b (8 cores: 4 + 4 -> 100 % of CPU), then eu-a.
    assert [(row["name"], row["host"]) for row in rows] == [("web-1", "eu-b"), ("web-2", "eu-b"), ("web-3", "eu-a")]
    assert rows[1]["free_after"][0] == {"label": "CPU", "amount": "0 cores"}  # counts web-1 on the same host
    assert rows[2]["free_after"][0] == {"label": "CPU", "amount": "12 cores"}
    assert rows[0]["score"] == f"{(4 / 8 + 16 / 256 + 500 / 8192) / 3 * 100:.1f} %"
    page = response.content.decode()
    assert "All 3 nodes would be placed, on 2 hosts." in page
    assert 'id="confirm-placement"' in page and "Confirm: place 3 nodes" in page
    assert not Node.objects.exists() and not NodeLog.objects.exists()
    assert set(Host.objects.values_list("node_count", flat=True)) == {0}


def test_confirm_places_each_node_through_node_create_and_sums_up_in_one_message():
    image = fleet()
    client = client_for(staff("nodes.add_node"), csrf=True)
    data = {**form_data(image, count="5"), "csrfmiddlewaretoken": client.cookies["csrftoken"].value}
    plan = client.post(reverse(PLACE), {**data, "step": "plan"})
    assert plan.context["placed"] == 5

    response = client.post(reverse(PLACE), {**data, "step": "apply"})

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:nodes_node_changelist") + "?q=web-"
    assert messages_of(response) == ["5 nodes placed on 2 hosts."]
    placed = dict(Node.objects.values_list("name", "host__name"))
    assert placed == {"web-1": "eu-b", "web-2": "eu-b", "web-3": "eu-a", "web-4": "eu-a", "web-5": "eu-a"}
    hosts = {host.name: host for host in Host.objects.all()}
    assert (hosts["eu-a"].node_count, hosts["eu-a"].node_cpu_cores) == (3, 12)
    assert (hosts["eu-b"].node_count, hosts["eu-b"].node_cpu_cores) == (2, 8)
    assert set(NodeLog.objects.values_list("source", flat=True)) == {"admin"}


def test_more_than_fits_shows_the_refusal_sentence_then_places_what_fits_and_refuses_the_rest():
    image = fleet()
    client = client_for(staff("nodes.add_node"))
    data = form_data(image, count="8")

    plan = client.post(reverse(PLACE), {**data, "step": "plan"})

    assert plan.context["placed"] == 6
    assert plan.context["unplaced_names"] == ["web-7", "web-8"]
    sentence = plan.context["refusal"]
    assert sentence == (
        "No host can take this node: 0 of 4 hosts fit (2 short of cpu_cores, 1 not automatic, 1 outside region eu-1)."
    )
    page = plan.content.decode()
    assert "6 of 8 nodes would be placed, on 2 hosts" in page and sentence in page
    assert "Confirm: place the nodes (6 of 8 fit now)" in page

    response = client.post(reverse(PLACE), {**data, "step": "apply"})

    assert Node.objects.count() == 6
    with pytest.raises(NoHostAvailable) as refused:  # the service's own sentence, as API and CLI show it
        node_create(name="probe", image_id=image.pk, placement={"region": "eu-1"})
    assert refused.value.detail == sentence
    assert messages_of(response) == [f"6 nodes placed on 2 hosts; 2 not placed: {sentence}"]


def test_a_plan_where_nothing_fits_offers_no_confirm_and_says_why():
    image = fleet()
    response = client_for(staff("nodes.add_node")).post(
        reverse(PLACE), {**form_data(image, region="(none)", count="1"), "step": "plan"}
    )
    page = response.content.decode()
    assert response.context["placed"] == 0
    assert "None of the 1 node can be placed." in page
    assert "No host can take this node: 0 of 4 hosts fit (1 not automatic, 3 outside region (none))." in page
    assert 'id="confirm-placement"' not in page


def test_place_nodes_form_refuses_a_taken_prefix_a_bad_count_and_unknown_config_keys():
    image = fleet()
    client = client_for(staff("nodes.add_node"))
    node_create(name="web-2", host_id=Host.objects.get(name="us-a").pk, image_id=image.pk)

    taken = client.post(reverse(PLACE), {**form_data(image), "step": "plan"})
    assert taken.context["form"].errors["name_prefix"] == ["Nodes named web-2 already exist: choose another prefix."]
    too_many = client.post(reverse(PLACE), {**form_data(image, count="1001", name_prefix="db"), "step": "plan"})
    assert "count" in too_many.context["form"].errors
    unknown = client.post(
        reverse(PLACE), {**form_data(image, properties='{"nope": "1"}', name_prefix="db"), "step": "plan"}
    )
    assert "rows" not in unknown.context
    assert unknown.context["form"].errors["properties"] == ["Unknown key for ethereum@1.14.0: nope."]
    assert Node.objects.count() == 1


def test_back_from_the_plan_keeps_the_request_on_the_form():
    image = fleet()
    response = client_for(staff("nodes.add_node")).post(
        reverse(PLACE), {**form_data(image, count="4", strategy="spread"), "step": "edit"}
    )
    form = response.context["form"]
    assert response.templates[0].name == "admin/nodes/node/place_form.html"
    assert (form["count"].value(), form["strategy"].value(), form["region"].value()) == ("4", "spread", "eu-1")


# ---------------------------------------------------------------------------------------------
# Add node: the host is optional


def add(client, image, **data):
    return client.post(reverse(ADD), {"name": "node-new", "image": str(image.pk), "properties": "{}", **data})


def test_adding_a_node_without_a_host_places_it():
    image = fleet()
    response = add(client_for(staff("nodes.add_node")), image, strategy="spread", region="eu-1")
    assert response.status_code == 302
    node = Node.objects.get(name="node-new")
    assert node.host.name == "eu-a"  # spread: the emptier of eu-1's automatic hosts
    assert "Node node-new placed on eu-a (chosen by placement): 4 cores, 16.0 GiB, 500.0 GiB." in messages_of(response)


def test_a_host_together_with_placement_options_or_force_without_a_host_is_refused_with_the_services_message():
    image = fleet()
    us_a = Host.objects.get(name="us-a")
    client = client_for(staff("nodes.add_node", "hosts.overcommit_host"))

    both = add(client, image, host=str(us_a.pk), region="eu-1")
    assert both.context["adminform"].form.non_field_errors() == ["Name a host or ask for a placement, not both."]
    forced = add(client, image, force="on")
    assert forced.context["adminform"].form.non_field_errors() == [
        "force places past a named host's capacity; a placement never does. Name the host to force."
    ]
    assert not Node.objects.exists()


def test_adding_a_node_where_no_host_has_room_shows_the_refusal_sentence():
    image = fleet()
    response = add(client_for(staff("nodes.add_node")), image, region="(none)")
    assert response.context["adminform"].form.non_field_errors() == [
        "No host can take this node: 0 of 4 hosts fit (1 not automatic, 3 outside region (none))."
    ]


def test_adding_a_node_on_a_draining_host_is_refused():
    image = fleet()
    host = HostFactory(name="old-1", scheduling="draining")
    response = add(client_for(staff("nodes.add_node")), image, host=str(host.pk))
    errors = response.context["adminform"].form.non_field_errors()
    assert errors == [
        "Host old-1 is draining: it takes no new nodes (its nodes stay, and may be upgraded and deleted). "
        "Choose another host, or set it to automatic or manual."
    ]
    assert Host.objects.get(pk=host.pk).node_count == 0
