"""Writes through HTTP: create, delete, upgrade and its dry run, and every refusal of §4 with
its status, problem details and no trace in the database."""

import uuid

import pytest
from django.db import connection

from hosts.models import Host
from nodes.models import Command, Image, Node, NodeLog
from tests.api.conftest import assert_problem, snapshot
from tests.factories import GiB, HostFactory, ImageFactory, ImagePropertyFactory, place_node
from tests.invariants import assert_counters_exact
from tests.support import host_lock_held

pytestmark = pytest.mark.django_db

BIGINT_MAX = 2**63 - 1


def upgrade(client, node, image, **flags):
    return client.post(f"/api/v1/nodes/{node.pk}/upgrade/", {"image_id": str(image.pk), **flags})


def create(client, host, image, **fields):
    return client.post("/api/v1/nodes/", {"host_id": str(host.pk), "image_id": str(image.pk), **fields})


# ---------------------------------------------------------------------------------------------
# Create


def test_create_places_a_node_and_counts_it(admin_client, fleet):
    host, v1 = fleet["host"], fleet["v1"]

    response = create(admin_client, host, v1, name="eth-3", properties={"archive": "on"})

    assert response.status_code == 201
    body = response.json()
    node = Node.objects.get(name="eth-3")
    assert body["id"] == str(node.pk)
    assert response["Location"].endswith(f"/api/v1/nodes/{node.pk}/")
    assert body["host_id"] == str(host.pk) and body["image_id"] == str(v1.pk)
    assert body["properties"] == {"archive": "on"}
    assert (body["cpu_cores"], body["memory_bytes"], body["disk_bytes"]) == (2, 8 * GiB, 1524 * GiB)
    before = host.node_cpu_cores
    host.refresh_from_db()
    assert (host.node_count, host.node_cpu_cores) == (3, before + 2)
    log = NodeLog.objects.get(node_id=node.pk)
    assert (log.event, log.source, log.actor.has_perm("nodes.add_node")) == ("created", "api", True)
    assert Command.objects.filter(node_id=node.pk, kind="node_create").count() == 1
    assert_counters_exact()


def test_create_gives_missing_properties_the_image_defaults(admin_client, fleet):
    response = create(admin_client, fleet["host"], fleet["v1"], name="eth-3")

    assert response.status_code == 201
    assert response.json()["properties"] == {"archive": "off"}
    assert response.json()["disk_bytes"] == fleet["v1"].min_disk_bytes


@pytest.mark.parametrize(
    "fields, code, status",
    [
        ({"properties": {"pruning": "on"}}, "invalid", 400),
        ({"properties": {"archive": 1}}, "invalid", 400),
        ({"name": "eth-1"}, "invalid", 400),
        ({"host_id": "00000000-0000-0000-0000-000000000000"}, "not_found", 404),
        ({"image_id": "00000000-0000-0000-0000-000000000000"}, "not_found", 404),
    ],
    ids=["unknown-property", "non-string-value", "name-taken", "no-such-host", "no-such-image"],
)
def test_create_refusals_change_nothing(admin_client, fleet, fields, code, status):
    before = snapshot()
    payload = {"name": "eth-3", **fields}

    assert_problem(create(admin_client, fleet["host"], fleet["v1"], **payload), status, code)

    assert snapshot() == before


@pytest.mark.parametrize(
    "name", ["eth-1\nhost h1: node_count recorded 0\x1b[2K", "tab\tname", "bidi\u202eevil", "cr\rname"], ids=repr
)
def test_create_refuses_control_and_invisible_characters_in_the_name(admin_client, fleet, name):
    before = snapshot()

    body = assert_problem(create(admin_client, fleet["host"], fleet["v1"], name=name), 400, "invalid")

    assert "Control or invisible characters are not allowed" in body["errors"]["name"][0]
    assert snapshot() == before


def test_create_past_capacity_is_insufficient_capacity_and_force_places_it(admin_client, fleet):
    big = ImageFactory(protocol="ethereum", min_cpu_cores=13)
    before = snapshot()

    body = assert_problem(create(admin_client, fleet["host"], big, name="big"), 409, "insufficient_capacity")

    assert body["host"] == "host-a"
    assert body["shortfalls"] == [{"resource": "cpu_cores", "requested": 13, "available": 12}]
    assert "not enough CPU on host-a" in body["detail"]
    assert snapshot() == before
    assert create(admin_client, fleet["host"], big, name="big", force=True).status_code == 201
    assert NodeLog.objects.get(node_name="big").forced is True
    assert_counters_exact()


def test_create_beyond_64_bits_is_resource_overflow(admin_client):
    host = HostFactory(memory_bytes=BIGINT_MAX)
    place_node(host=host, image=ImageFactory(min_memory_bytes=BIGINT_MAX))
    before = snapshot()

    body = assert_problem(
        create(admin_client, host, ImageFactory(min_memory_bytes=1), name="one-more"), 422, "resource_overflow"
    )

    assert body["resource"] == "memory_bytes"
    assert snapshot() == before


def test_create_on_an_image_with_invalid_requirements_is_invalid_image_config(admin_client, fleet):
    Image.objects.filter(pk=fleet["v2"].pk).update(min_cpu_cores=-1)  # written around validation
    before = snapshot()

    assert_problem(create(admin_client, fleet["host"], fleet["v2"], name="eth-3"), 422, "invalid_image_config")

    assert snapshot() == before


# ---------------------------------------------------------------------------------------------
# Delete


def test_delete_removes_the_node_and_uncounts_it(admin_client, fleet):
    node, host = fleet["node"], fleet["host"]

    response = admin_client.delete(f"/api/v1/nodes/{node.pk}/")

    assert response.status_code == 204
    assert response.content == b""
    assert not Node.objects.filter(pk=node.pk).exists()
    host.refresh_from_db()
    assert host.node_count == 1
    assert NodeLog.objects.filter(node_id=node.pk, event="deleted", source="api").count() == 1
    assert Command.objects.filter(node_id=node.pk, kind="node_delete").count() == 1
    assert_counters_exact()
    assert_problem(admin_client.delete(f"/api/v1/nodes/{node.pk}/"), 404, "not_found")


def test_delete_with_drifted_counters_is_counter_drift_and_changes_nothing(admin_client, fleet):
    Host.objects.filter(pk=fleet["host"].pk).update(node_memory_bytes=0)
    before = snapshot()

    body = assert_problem(admin_client.delete(f"/api/v1/nodes/{fleet['node'].pk}/"), 409, "counter_drift")

    assert (body["host"], body["resource"]) == ("host-a", "memory_bytes")
    assert "repair_counters" in body["detail"]
    assert snapshot() == before


# ---------------------------------------------------------------------------------------------
# Upgrade


def test_upgrade_answers_node_host_and_the_change(admin_client, fleet):
    node, host, v1, v2 = fleet["node"], fleet["host"], fleet["v1"], fleet["v2"]
    old = {"cpu_cores": 2, "memory_bytes": 8 * GiB, "disk_bytes": 1524 * GiB}
    new = {"cpu_cores": 4, "memory_bytes": 16 * GiB, "disk_bytes": 2548 * GiB}

    response = upgrade(admin_client, node, v2)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"node", "host", "upgrade"}
    assert body["upgrade"] == {
        "from_image_id": str(v1.pk),
        "to_image_id": str(v2.pk),
        "old": old,
        "new": new,
        "delta": {"cpu_cores": 2, "memory_bytes": 8 * GiB, "disk_bytes": 1024 * GiB},
    }
    assert body["node"]["image_id"] == str(v2.pk)
    assert body["node"]["state"] == "upgrading"
    assert body["node"]["properties"] == {"archive": "on"}
    assert {k: body["node"][k] for k in new} == new
    host.refresh_from_db()
    assert body["host"]["node_cpu_cores"] == host.node_cpu_cores == 6
    assert body["host"]["free_cpu_cores"] == 10
    log = NodeLog.objects.get(node_id=node.pk, event="upgrade_started")
    assert (log.source, log.old_image_id, log.new_image_id, log.actor is not None) == ("api", v1.pk, v2.pk, True)
    assert Command.objects.filter(node_id=node.pk, kind="node_upgrade").count() == 1
    assert_counters_exact()


def test_dry_run_answers_the_same_shape_plus_fits_and_error_and_writes_nothing(admin_client, fleet):
    node, v2 = fleet["node"], fleet["v2"]
    before = snapshot()

    body = upgrade(admin_client, node, v2, dry_run=True).json()

    assert set(body) == {"node", "host", "upgrade", "would_apply", "fits", "error"}
    assert body["would_apply"] is True
    assert body["fits"] == {"cpu_cores": True, "memory_bytes": True, "disk_bytes": True}
    assert body["error"] is None
    assert body["host"]["node_cpu_cores"] == 6  # as it would be after
    assert body["node"]["image_id"] == str(fleet["v1"].pk)  # the node as it is
    assert body["upgrade"]["delta"]["cpu_cores"] == 2
    assert snapshot() == before
    assert upgrade(admin_client, node, v2).json()["upgrade"] == body["upgrade"]


def test_dry_run_of_a_refused_upgrade_is_200_with_the_error_it_would_raise(admin_client, fleet):
    huge = ImageFactory(protocol="ethereum", min_memory_bytes=100 * GiB)
    before = snapshot()

    response = upgrade(admin_client, fleet["node"], huge, dry_run=True)

    assert response.status_code == 200
    body = response.json()
    assert body["would_apply"] is False
    assert body["fits"] == {"cpu_cores": True, "memory_bytes": False, "disk_bytes": True}
    assert body["upgrade"]["new"]["memory_bytes"] == 100 * GiB
    assert body["host"]["node_memory_bytes"] == fleet["host"].node_memory_bytes + 92 * GiB  # as it would be after
    assert body["error"]["code"] == "insufficient_capacity"
    assert body["error"]["status"] == 409
    assert body["error"]["type"] == "/problems/insufficient_capacity"
    assert body["error"]["shortfalls"][0]["resource"] == "memory_bytes"
    assert snapshot() == before


def test_a_forced_dry_run_past_capacity_would_apply(as_role, fleet):
    huge = ImageFactory(protocol="ethereum", min_memory_bytes=100 * GiB)

    body = upgrade(as_role("overcommitter"), fleet["node"], huge, dry_run=True, force=True).json()

    assert (body["would_apply"], body["error"]) == (True, None)
    assert body["fits"]["memory_bytes"] is False


def _image_past_64_bits(fleet):
    """An ethereum image on which eth-1's config (archive=on) needs memory past 2**63-1."""
    image = ImageFactory(protocol="ethereum", min_memory_bytes=BIGINT_MAX)
    ImagePropertyFactory(image=image, key="archive", default_value="off", add_memory_bytes=1)
    return image


@pytest.mark.parametrize(
    "target, code, new_known",
    [
        ("btc", "incompatible_image", False),
        ("broken", "invalid_image_config", False),
        ("past_64_bits", "resource_overflow", False),
        ("counter_overflow", "resource_overflow", True),
        ("v1", "already_on_image", True),
        ("drift", "counter_drift", True),
    ],
)
def test_a_dry_run_refused_before_capacity_does_not_pretend(admin_client, fleet, target, code, new_known):
    """`fits` is null (capacity is not the question), `host` as it is (nothing would change),
    and `new`/`delta` null where no allocation on the target image can be computed."""
    node, host = fleet["node"], fleet["host"]
    images = {
        "btc": lambda: fleet["btc"],
        "broken": lambda: ImageFactory(protocol="ethereum"),
        "past_64_bits": lambda: _image_past_64_bits(fleet),
        "counter_overflow": lambda: _overflow_image_for(host, node),
        "v1": lambda: fleet["v1"],
        "drift": lambda: ImageFactory(protocol="ethereum", min_cpu_cores=1),  # shrinks: counters would drop
    }
    image = images[target]()
    if target == "broken":
        Image.objects.filter(pk=image.pk).update(min_disk_bytes=-5)
    if target == "drift":
        Host.objects.filter(pk=host.pk).update(node_cpu_cores=0)
    current = admin_client.get(f"/api/v1/hosts/{host.pk}/").json()

    body = upgrade(admin_client, node, image, dry_run=True).json()

    assert (body["would_apply"], body["error"]["code"], body["fits"]) == (False, code, None)
    assert body["host"] == current
    if new_known:
        assert set(body["upgrade"]["new"]) == {"cpu_cores", "memory_bytes", "disk_bytes"}
        assert all(0 <= amount <= BIGINT_MAX for amount in body["upgrade"]["new"].values())
    else:
        assert (body["upgrade"]["new"], body["upgrade"]["delta"]) == (None, None)
    assert body["upgrade"]["old"]["cpu_cores"] == node.cpu_cores


def test_dry_run_of_a_missing_node_or_image_is_still_not_found(admin_client, fleet):
    missing = uuid.uuid4()

    assert_problem(
        admin_client.post(f"/api/v1/nodes/{missing}/upgrade/", {"image_id": str(fleet["v2"].pk), "dry_run": True}),
        404,
        "not_found",
    )
    body = assert_problem(
        admin_client.post(f"/api/v1/nodes/{fleet['node'].pk}/upgrade/", {"image_id": str(missing), "dry_run": True}),
        404,
        "not_found",
    )
    assert str(missing) in body["detail"]


def _overflow_image_for(host, node):
    """An image whose node would push the host's memory counter past 2**63-1."""
    Host.objects.filter(pk=host.pk).update(memory_bytes=BIGINT_MAX)
    place_node(host=host, image=ImageFactory(protocol="solana", min_memory_bytes=BIGINT_MAX - 24 * GiB), force=True)
    return ImageFactory(protocol="ethereum", min_memory_bytes=64 * GiB)


@pytest.mark.parametrize(
    "target, status, code",
    [
        ("v1", 409, "already_on_image"),
        ("btc", 422, "incompatible_image"),
        ("broken", 422, "invalid_image_config"),
        ("overflow", 422, "resource_overflow"),
        ("huge", 409, "insufficient_capacity"),
        ("missing", 404, "not_found"),
    ],
)
def test_upgrade_refusals_answer_their_code_and_change_nothing(admin_client, fleet, target, status, code):
    node, host = fleet["node"], fleet["host"]
    images = {
        "v1": lambda: fleet["v1"],
        "btc": lambda: fleet["btc"],
        "broken": lambda: ImageFactory(protocol="ethereum", min_disk_bytes=-5),
        "overflow": lambda: _overflow_image_for(host, node),
        "huge": lambda: ImageFactory(protocol="ethereum", min_cpu_cores=64),
        "missing": lambda: Image(pk=uuid.uuid4()),
    }
    image = images[target]()
    if target == "broken":
        Image.objects.filter(pk=image.pk).update(min_disk_bytes=-5)
    before = snapshot()

    body = assert_problem(upgrade(admin_client, node, image), status, code)

    assert snapshot() == before
    if code == "resource_overflow":
        assert body["resource"] == "memory_bytes"
    if code == "insufficient_capacity":
        assert body["shortfalls"] == [{"resource": "cpu_cores", "requested": 62, "available": 12}]


def test_upgrade_of_a_missing_node_is_not_found(admin_client, fleet):
    assert_problem(upgrade(admin_client, Node(pk=uuid.uuid4()), fleet["v2"]), 404, "not_found")


def test_force_places_an_upgrade_past_capacity_for_an_overcommitter(as_role, fleet):
    huge = ImageFactory(protocol="ethereum", min_cpu_cores=64)

    response = upgrade(as_role("overcommitter"), fleet["node"], huge, force=True)

    assert response.status_code == 200
    assert response.json()["host"]["free_cpu_cores"] == 16 - 64 - 2
    assert NodeLog.objects.get(node_id=fleet["node"].pk, event="upgrade_started").forced is True
    assert_counters_exact()


def test_image_property_values_carry_over_and_keys_the_new_image_lacks_are_dropped(admin_client):
    host = HostFactory()
    old = ImageFactory(protocol="ethereum")
    new = ImageFactory(protocol="ethereum")
    ImagePropertyFactory(image=old, key="sync", default_value="snap")
    ImagePropertyFactory(image=old, key="metrics", default_value="off")
    ImagePropertyFactory(image=new, key="sync", default_value="full")
    node = place_node(host=host, image=old, properties={"sync": "archive", "metrics": "off"})

    body = upgrade(admin_client, node, new).json()

    assert body["node"]["properties"] == {"sync": "archive"}


# ---------------------------------------------------------------------------------------------
# busy: a lock held past the lock timeout


@pytest.mark.django_db(transaction=True)
def test_a_lock_held_past_the_lock_timeout_answers_busy_with_retry_after(admin_client, fleet):
    with host_lock_held(fleet["host"].pk):
        before = snapshot()
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '200ms'")
        response = upgrade(admin_client, fleet["node"], fleet["v2"])

    assert_problem(response, 503, "busy")
    assert response["Retry-After"] == "1"
    assert snapshot() == before
    assert upgrade(admin_client, fleet["node"], fleet["v2"]).status_code == 200  # the cause gone, it succeeds
    assert_counters_exact()
