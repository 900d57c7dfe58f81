"""Reads: hosts, images and nodes (list and detail), filters, cursor pagination, query counts."""

import base64
import uuid

import pytest

from tests.api.conftest import assert_problem
from tests.factories import GiB, HostFactory, ImageFactory, ImagePropertyFactory, place_node

pytestmark = pytest.mark.django_db


def test_host_shows_capacity_counters_and_free_capacity(admin_client, fleet):
    host = fleet["host"]

    response = admin_client.get(f"/api/v1/hosts/{host.pk}/")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "id": str(host.pk),
        "name": "host-a",
        "cpu_cores": 16,
        "memory_bytes": 64 * GiB,
        "disk_bytes": 4096 * GiB,
        # §11's capacity model, at its defaults: allocatable equals capacity.
        "reserved_cpu_cores": 0,
        "reserved_memory_bytes": 0,
        "reserved_disk_bytes": 0,
        "cpu_allocation_ratio": "1.0000",
        "memory_allocation_ratio": "1.0000",
        "disk_allocation_ratio": "1.0000",
        "max_nodes": None,
        "region": "",
        "scheduling": "automatic",
        "allocatable_cpu_cores": 16,
        "allocatable_memory_bytes": 64 * GiB,
        "allocatable_disk_bytes": 4096 * GiB,
        "node_count": 2,
        "node_cpu_cores": 4,
        "node_memory_bytes": 16 * GiB,
        "node_disk_bytes": host.node_disk_bytes,
        "free_cpu_cores": 12,
        "free_memory_bytes": 48 * GiB,
        "free_disk_bytes": 4096 * GiB - host.node_disk_bytes,
    }


def test_free_capacity_is_negative_on_a_host_placed_past_capacity(admin_client):
    host = HostFactory(cpu_cores=1)
    place_node(host=host, image=ImageFactory(min_cpu_cores=3), force=True)

    body = admin_client.get(f"/api/v1/hosts/{host.pk}/").json()

    assert body["node_cpu_cores"] == 3
    assert body["free_cpu_cores"] == -2


def test_integers_are_exact_at_the_64_bit_limit(admin_client):
    host = HostFactory(memory_bytes=2**63 - 1)

    body = admin_client.get(f"/api/v1/hosts/{host.pk}/").json()

    assert body["memory_bytes"] == 9223372036854775807
    assert body["free_memory_bytes"] == 9223372036854775807


def test_image_shows_requirements_and_properties(admin_client, fleet):
    v1 = fleet["v1"]

    body = admin_client.get(f"/api/v1/images/{v1.pk}/").json()

    assert body == {
        "id": str(v1.pk),
        "protocol": "ethereum",
        "version": "1.0.0",
        "min_cpu_cores": 2,
        "min_memory_bytes": 8 * GiB,
        "min_disk_bytes": v1.min_disk_bytes,
        "properties": [
            {
                "key": "archive",
                "default_value": "off",
                "add_cpu_cores": None,
                "add_memory_bytes": None,
                "add_disk_bytes": 1024 * GiB,
            }
        ],
    }


def test_node_shows_allocation_and_foreign_keys_as_ids(admin_client, fleet):
    node = fleet["node"]

    body = admin_client.get(f"/api/v1/nodes/{node.pk}/").json()

    assert body["id"] == str(node.pk)
    assert body["name"] == "eth-1"
    assert body["host_id"] == str(fleet["host"].pk)
    assert body["image_id"] == str(fleet["v1"].pk)
    assert body["properties"] == {"archive": "on"}
    assert (body["cpu_cores"], body["memory_bytes"], body["disk_bytes"]) == (2, 8 * GiB, node.disk_bytes)
    assert body["state"] == "running"
    assert {"created_at", "updated_at"} <= body.keys()


@pytest.mark.parametrize("kind", ["hosts", "images", "nodes"])
def test_a_missing_id_is_not_found(admin_client, fleet, kind):
    missing = uuid.uuid4()

    body = assert_problem(admin_client.get(f"/api/v1/{kind}/{missing}/"), 404, "not_found")

    assert str(missing) in body["detail"]


def test_a_malformed_id_in_the_path_is_not_found(admin_client, fleet):
    assert_problem(admin_client.get("/api/v1/nodes/12345/"), 404, "not_found")


def test_nodes_filter_by_host_image_and_protocol(admin_client, fleet):
    elsewhere = HostFactory()
    btc_node = place_node(host=elsewhere, image=fleet["btc"], name="btc-1")

    def names(query):
        response = admin_client.get(f"/api/v1/nodes/?{query}")
        assert response.status_code == 200
        return [node["name"] for node in response.json()["results"]]

    assert names("") == ["btc-1", "eth-1", "eth-2"]
    assert names(f"host={fleet['host'].pk}") == ["eth-1", "eth-2"]
    assert names(f"host={elsewhere.pk}") == ["btc-1"]
    assert names(f"image={fleet['btc'].pk}") == [btc_node.name]
    assert names("protocol=ethereum") == ["eth-1", "eth-2"]
    assert names(f"protocol=bitcoin&host={fleet['host'].pk}") == []
    assert names(f"host={uuid.uuid4()}") == []


@pytest.mark.parametrize(
    "query, field",
    [
        ("host=not-a-uuid", "host"),
        ("host=", "host"),
        ("image=5", "image"),
        ("protocol=eth%00", "protocol"),
        ("page_size=0", "page_size"),
        ("page_size=1001", "page_size"),
        ("page_size=ten", "page_size"),
    ],
)
def test_a_malformed_filter_is_invalid(admin_client, fleet, query, field):
    body = assert_problem(admin_client.get(f"/api/v1/nodes/?{query}"), 400, "invalid")

    assert field in body["errors"]


def _cursor(querystring: str) -> str:
    return base64.b64encode(querystring.encode()).decode()


@pytest.mark.parametrize(
    "cursor",
    ["garbage", "%ff%fe", _cursor("p=%00"), _cursor("r=x"), _cursor("o=-1"), _cursor("o=" + "9" * 5000)],
    ids=["not-base64", "not-ascii", "nul-in-position", "bad-reverse", "negative-offset", "huge-offset"],
)
def test_a_malformed_cursor_is_invalid(admin_client, fleet, cursor):
    body = assert_problem(admin_client.get(f"/api/v1/nodes/?cursor={cursor}"), 400, "invalid")

    assert "cursor" in body["errors"]


def test_cursor_pagination_walks_every_node_once_without_counting(admin_client, queries):
    host = HostFactory(cpu_cores=1000, memory_bytes=10**15, disk_bytes=10**16)
    image = ImageFactory()
    expected = sorted(place_node(host=host, image=image, name=f"n-{i:02d}").name for i in range(7))

    seen, url = [], "/api/v1/nodes/?page_size=3"
    with queries() as statements:
        while url:
            body = admin_client.get(url).json()
            assert len(body["results"]) <= 3
            seen += [node["name"] for node in body["results"]]
            url = body["next"]

    assert seen == expected
    assert not any("COUNT(" in sql.upper() for sql in statements)


def test_cursor_pagination_goes_back_with_previous(admin_client):
    host = HostFactory(cpu_cores=1000, memory_bytes=10**15, disk_bytes=10**16)
    image = ImageFactory()
    for i in range(5):
        place_node(host=host, image=image, name=f"n-{i}")

    second = admin_client.get(admin_client.get("/api/v1/nodes/?page_size=2").json()["next"]).json()
    first = admin_client.get(second["previous"]).json()

    assert [n["name"] for n in second["results"]] == ["n-2", "n-3"]
    assert [n["name"] for n in first["results"]] == ["n-0", "n-1"]


def _fill(hosts: int, nodes_per_host: int):
    for _ in range(hosts):
        host = HostFactory(cpu_cores=1000, memory_bytes=10**15, disk_bytes=10**16)
        image = ImageFactory()
        ImagePropertyFactory(image=image)
        ImagePropertyFactory(image=image)
        for _ in range(nodes_per_host):
            place_node(host=host, image=image)


@pytest.mark.parametrize(
    "path", ["/api/v1/nodes/", "/api/v1/hosts/", "/api/v1/images/", "/api/v1/nodes/?protocol=ethereum&page_size=20"]
)
def test_a_page_runs_a_constant_number_of_queries(admin_client, django_assert_max_num_queries, path):
    # token + user, then the page (images: + one query for all their properties)
    _fill(hosts=1, nodes_per_host=1)
    with django_assert_max_num_queries(3):
        small = admin_client.get(path)
    _fill(hosts=12, nodes_per_host=4)
    with django_assert_max_num_queries(3):
        large = admin_client.get(path)

    assert small.status_code == large.status_code == 200
    assert len(large.json()["results"]) >= len(small.json()["results"])


def test_a_detail_runs_a_constant_number_of_queries(admin_client, fleet, django_assert_max_num_queries):
    with django_assert_max_num_queries(3):
        assert admin_client.get(f"/api/v1/images/{fleet['v1'].pk}/").status_code == 200
    with django_assert_max_num_queries(2):
        assert admin_client.get(f"/api/v1/nodes/{fleet['node'].pk}/").status_code == 200


def test_options_describes_the_endpoint_without_guessing_its_fields(admin_client, fleet):
    response = admin_client.options("/api/v1/nodes/")

    assert response.status_code == 200
    assert response.json()["parses"] == ["application/json"]
    assert "actions" not in response.json()
