"""The rollouts admin: the list's progress bars, the rollout page (batches, hosts, controls,
why it stopped), "Roll out this image…" (selection → plan → confirm), auto-upgrade on an image
added in the admin; constant queries whatever the rollout's size."""

import pytest
from django.urls import reverse

from nodes.models import Image, Node
from nodes.rollouts.models import Rollout
from nodes.rollouts.plan import selection_check
from nodes.rollouts.services import rollout_create
from tests.admin.conftest import client_for, messages_of, post_action, staff
from tests.factories import GiB, HostFactory, ImageFactory, TiB
from tests.nodes.rollouts.support import answer, running_node, work

pytestmark = pytest.mark.django_db

ROLLOUT_PERMS = ["nodes.view_rollout", "nodes.add_rollout", "nodes.change_rollout", "nodes.upgrade_node"]


@pytest.fixture
def fleet():
    v1 = ImageFactory(protocol="eth", version="1.0", min_cpu_cores=2, min_memory_bytes=GiB, min_disk_bytes=GiB)
    v2 = ImageFactory(protocol="eth", version="2.0", min_cpu_cores=3, min_memory_bytes=GiB, min_disk_bytes=GiB)
    host = HostFactory(name="h1", cpu_cores=64, memory_bytes=64 * GiB, disk_bytes=TiB)
    nodes = [running_node(host=host, image=v1, name=f"n{i}") for i in range(1, 5)]
    return {"v1": v1, "v2": v2, "host": host, "nodes": nodes}


def test_roll_out_this_image_selection_plan_confirm(fleet):
    client = client_for(staff(*ROLLOUT_PERMS))
    chosen = post_action(client, "admin:nodes_image_changelist", "roll_out", [fleet["v2"].pk])
    url = reverse("admin:nodes_rollout_image", args=[fleet["v2"].pk])
    assert chosen.status_code == 302 and chosen["Location"] == url

    form = {"batch_size": 2, "canary": 1, "max_failures": 1, "result_timeout_seconds": 3600, "hosts": "h1"}
    plan = client.post(url, {**form, "step": "plan"})
    assert plan.status_code == 200
    assert b"4 nodes in 3 batches" in plan.content and b"Confirm: create the rollout" in plan.content
    assert not Rollout.objects.exists()

    created = client.post(url, {**form, "step": "create", "start": "on"})
    rollout = Rollout.objects.get()
    assert created["Location"] == reverse("admin:nodes_rollout_change", args=[rollout.pk])
    assert rollout.state == "running" and rollout.batches == 3


def test_the_rollout_page_shows_why_it_halted_and_offers_resume(fleet):
    rollout = rollout_create(selection=selection_check(image_id=fleet["v2"].pk), start=True)
    work()
    answer("failed")
    work()
    client = client_for(staff(*ROLLOUT_PERMS))

    page = client.get(reverse("admin:nodes_rollout_change", args=[rollout.pk]))

    assert page.status_code == 200
    body = page.content.decode()
    assert "Halted" in body and "reached max_failures (1)" in body and 'id="rollout-resume"' in body
    assert 'id="rollout-trouble"' in body and "n1" in body
    control = reverse("admin:nodes_rollout_control", args=[rollout.pk, "resume"])
    refused = client.post(control, {"max_failures": "1"}, follow=True)
    assert "as many as max_failures allows" in " ".join(messages_of(refused))
    client.post(control, {"max_failures": "2"})
    assert Rollout.objects.get(pk=rollout.pk).state == "running"


def test_controls_need_change_rollout(fleet):
    rollout = rollout_create(selection=selection_check(image_id=fleet["v2"].pk))
    viewer = client_for(staff("nodes.view_rollout"))

    page = viewer.get(reverse("admin:nodes_rollout_change", args=[rollout.pk]))
    assert page.status_code == 200 and 'id="rollout-controls"' not in page.content.decode()
    assert viewer.post(reverse("admin:nodes_rollout_control", args=[rollout.pk, "start"])).status_code == 403
    assert viewer.get(reverse("admin:nodes_rollout_image", args=[fleet["v2"].pk])).status_code == 403
    assert Rollout.objects.get(pk=rollout.pk).state == "planned"


def test_list_and_page_run_a_constant_number_of_queries(fleet, django_assert_max_num_queries):
    small = rollout_create(selection=selection_check(image_id=fleet["v2"].pk, node_ids=[fleet["nodes"][0].pk]))
    big_host = HostFactory(cpu_cores=10**6, memory_bytes=10**6 * GiB, disk_bytes=10**6 * GiB)
    for i in range(30):
        running_node(host=big_host, image=fleet["v1"], name=f"more-{i}")
    big = rollout_create(selection=selection_check(image_id=fleet["v2"].pk, batch_size=3))
    client = client_for(staff(*ROLLOUT_PERMS))
    client.get(reverse("admin:nodes_rollout_changelist"))  # warm the session and permission caches

    for rollout in (small, big):
        with django_assert_max_num_queries(12):
            assert client.get(reverse("admin:nodes_rollout_change", args=[rollout.pk])).status_code == 200
    with django_assert_max_num_queries(12):
        listing = client.get(reverse("admin:nodes_rollout_changelist"))
    assert listing.status_code == 200 and listing.content.decode().count('class="nf-progress"') == 2


def test_an_image_added_in_the_admin_rolls_out_to_auto_upgrade_nodes(fleet):
    Node.objects.filter(name__in=["n1", "n2"]).update(auto_upgrade=True)
    client = client_for(staff("nodes.add_image", "nodes.add_rollout", "nodes.upgrade_node"))

    response = client.post(
        reverse("admin:nodes_image_add"),
        {
            "protocol": "eth",
            "version": "1.5",
            "min_cpu_cores": 2,
            "min_memory_bytes": GiB,
            "min_disk_bytes": GiB,
            "properties-TOTAL_FORMS": 0,
            "properties-INITIAL_FORMS": 0,
        },
        follow=True,
    )

    assert response.status_code == 200
    rollout = Rollout.objects.get(image=Image.objects.get(version="1.5"))
    assert rollout.auto and rollout.state == "planned"
    assert any("Auto-upgrade: rollout" in message for message in messages_of(response))
    assert set(rollout.nodes.values_list("node_name", flat=True)) == {"n1", "n2"}


def test_auto_upgrade_is_set_at_create_and_by_the_node_actions(fleet):
    client = client_for(staff("nodes.add_node", "nodes.upgrade_node"))
    form = {"name": "new", "host": fleet["host"].pk, "image": fleet["v1"].pk, "properties": "{}", "auto_upgrade": "on"}

    client.post(reverse("admin:nodes_node_add"), form)
    assert Node.objects.get(name="new").auto_upgrade is True

    ids = [node.pk for node in fleet["nodes"]]
    post_action(client, "admin:nodes_node_changelist", "auto_upgrade_on", ids)
    assert Node.objects.filter(auto_upgrade=True).count() == 5
    response = post_action(client, "admin:nodes_node_changelist", "auto_upgrade_off", ids[:2])
    assert Node.objects.filter(auto_upgrade=True).count() == 3
    assert response.status_code == 302
