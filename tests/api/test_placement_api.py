"""§11 over HTTP: placed creates, the refusal, host writes, the plan and headroom."""

import pytest

from hosts.models import Host
from nodes.models import Node
from tests.api.conftest import assert_problem, token_client
from tests.factories import HostFactory, ImageFactory, UserFactory, place_node
from tests.invariants import assert_counters_exact

pytestmark = pytest.mark.django_db

HOST_WRITER = ["hosts.view_host", "hosts.add_host", "hosts.change_host"]


def image(cpu=1, memory=1, disk=1, **values):
    return ImageFactory(min_cpu_cores=cpu, min_memory_bytes=memory, min_disk_bytes=disk, **values)


def host(name, cpu=10, memory=10, disk=10, **values):
    return HostFactory(name=name, cpu_cores=cpu, memory_bytes=memory, disk_bytes=disk, **values)


class TestPlacedCreate:
    def test_without_host_id_placement_chooses(self, admin_client):
        img = image()
        host("a", region="eu-1")
        chosen = host("b", region="us-1")
        response = admin_client.post(
            "/api/v1/nodes/",
            {"name": "n1", "image_id": str(img.pk), "placement": {"region": "us-1", "strategy": "spread"}},
            format="json",
        )
        assert response.status_code == 201, response.content
        assert response.json()["host_id"] == str(chosen.pk)
        response = admin_client.post(
            "/api/v1/nodes/", {"name": "n2", "image_id": str(img.pk), "host_id": None}, format="json"
        )
        assert response.status_code == 201
        assert_counters_exact()

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"placement": {"strategy": "spread"}, "host_id": "HOST"}, "placement"),
            ({"force": True}, "force"),
            ({"placement": {"strategy": "pack"}}, "placement"),
            ({"placement": {"region": 1}}, "placement"),
            ({"placement": {"spread_protocol": 1}}, "placement"),
            ({"placement": {"extra": True}}, "placement"),
            ({"placement": "binpack"}, "placement"),
        ],
    )
    def test_placement_input_is_strict(self, admin_client, body, field):
        img, h = image(), host("a")
        body = {k: (str(h.pk) if v == "HOST" else v) for k, v in body.items()}
        response = admin_client.post("/api/v1/nodes/", {"name": "n", "image_id": str(img.pk), **body}, format="json")
        problem = assert_problem(response, 400, "invalid")
        assert field in problem["errors"], problem
        assert Node.objects.count() == 0

    def test_refusal_is_409_with_the_counts(self, admin_client):
        img = image(cpu=5)
        host("small", cpu=1)
        host("manual", scheduling="manual")
        response = admin_client.post("/api/v1/nodes/", {"name": "n", "image_id": str(img.pk)}, format="json")
        problem = assert_problem(response, 409, "no_host_available")
        assert problem["hosts_considered"] == 2
        assert problem["excluded"] == {
            "scheduling": 1,
            "region": 0,
            "cpu_cores": 1,
            "memory_bytes": 0,
            "disk_bytes": 0,
            "node_count": 0,
        }
        assert (
            problem["detail"] == "No host can take this node: 0 of 2 hosts fit (1 short of cpu_cores, 1 not automatic)."
        )

    def test_a_named_draining_host_is_409_host_unavailable(self, admin_client):
        h = host("d", scheduling="draining")
        response = admin_client.post(
            "/api/v1/nodes/", {"name": "n", "image_id": str(image().pk), "host_id": str(h.pk)}, format="json"
        )
        problem = assert_problem(response, 409, "host_unavailable")
        assert (problem["host"], problem["scheduling"]) == ("d", "draining")


class TestHostWrites:
    def test_create_and_patch(self):
        client = token_client(UserFactory(permissions=HOST_WRITER))
        response = client.post(
            "/api/v1/hosts/",
            {
                "name": "h1",
                "cpu_cores": 10,
                "memory_bytes": 100,
                "disk_bytes": 1000,
                "cpu_allocation_ratio": "1.5",
                "memory_allocation_ratio": 2,
                "reserved_disk_bytes": 100,
                "region": "eu-1",
            },
            format="json",
        )
        assert response.status_code == 201, response.content
        body = response.json()
        assert response["Location"].endswith(f"/api/v1/hosts/{body['id']}/")
        assert (body["cpu_allocation_ratio"], body["memory_allocation_ratio"]) == ("1.5000", "2.0000")
        assert (body["allocatable_cpu_cores"], body["allocatable_memory_bytes"], body["allocatable_disk_bytes"]) == (
            15,
            200,
            900,
        )
        assert (body["free_cpu_cores"], body["over_allocated"], body["scheduling"]) == (15, [], "automatic")

        h = Host.objects.get(pk=body["id"])
        place_node(host=h, image=image(cpu=6, memory=1, disk=1))
        response = client.patch(f"/api/v1/hosts/{h.pk}/", {"cpu_allocation_ratio": 0.5, "max_nodes": 0}, format="json")
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["over_allocated"] == ["cpu_cores", "node_count"]
        assert (body["allocatable_cpu_cores"], body["free_cpu_cores"], body["node_cpu_cores"]) == (5, -1, 6)
        assert_counters_exact()

    @pytest.mark.parametrize(
        "body",
        [
            {"node_count": 0},
            {"node_cpu_cores": 1},
            {"allocatable_cpu_cores": 1},
            {"cpu_allocation_ratio": "1.00001"},
            {"cpu_allocation_ratio": 0},
            {"cpu_allocation_ratio": True},
            {"cpu_cores": "8"},
            {"max_nodes": -1},
            {"scheduling": "later"},
            {"region": None},
        ],
    )
    def test_patch_is_strict(self, body):
        h = host("h")
        client = token_client(UserFactory(permissions=HOST_WRITER))
        before = Host.objects.filter(pk=h.pk).values().get()
        assert_problem(client.patch(f"/api/v1/hosts/{h.pk}/", body, format="json"), 400, "invalid")
        assert Host.objects.filter(pk=h.pk).values().get() == before

    def test_permissions(self, as_role):
        h = host("h")
        reader = as_role("reader")
        assert_problem(reader.patch(f"/api/v1/hosts/{h.pk}/", {"region": "x"}, format="json"), 403, "permission_denied")
        assert_problem(
            reader.post(
                "/api/v1/hosts/", {"name": "x", "cpu_cores": 1, "memory_bytes": 1, "disk_bytes": 1}, format="json"
            ),
            403,
            "permission_denied",
        )
        writer = token_client(UserFactory(permissions=HOST_WRITER))
        assert_problem(
            writer.patch("/api/v1/hosts/4a5892ab-1f6f-4eee-8a31-8aa2c407c3a1/", {"region": "x"}, format="json"),
            404,
            "not_found",
        )
        assert writer.put(f"/api/v1/hosts/{h.pk}/", {"region": "x"}, format="json").status_code == 405


class TestPlan:
    def test_running_totals_agree_with_the_creates_that_follow(self, admin_client):
        img = image(cpu=2, memory=1, disk=1)
        host("a", cpu=4)
        host("b", cpu=6)
        host("c", cpu=3, max_nodes=1)
        response = admin_client.post(
            "/api/v1/nodes/placement/",
            {"image_id": str(img.pk), "count": 8, "placement": {"strategy": "spread"}},
            format="json",
        )
        assert response.status_code == 200, response.content
        plan = response.json()
        assert (plan["count"], plan["placed"]) == (8, 6)  # a: 2, b: 3, c: 1
        assert plan["requested"] == {"cpu_cores": 2, "memory_bytes": 1, "disk_bytes": 1}
        assert plan["error"]["code"] == "no_host_available"
        planned = [row["host_name"] for row in plan["placements"]]
        assert sorted(planned) == ["a", "a", "b", "b", "b", "c"]
        created = []
        for n in range(6):
            response = admin_client.post(
                "/api/v1/nodes/",
                {"name": f"n{n}", "image_id": str(img.pk), "placement": {"strategy": "spread"}},
                format="json",
            )
            created.append(Host.objects.get(pk=response.json()["host_id"]).name)
        assert created == planned
        response = admin_client.post(
            "/api/v1/nodes/",
            {"name": "n7", "image_id": str(img.pk), "placement": {"strategy": "spread"}},
            format="json",
        )
        assert assert_problem(response, 409, "no_host_available")["detail"] == plan["error"]["detail"]

    def test_listing_candidates_and_misses(self, admin_client):
        img = image(cpu=2)
        host("fits")
        host("short", cpu=1)
        host("manual", scheduling="manual")
        plan = admin_client.post("/api/v1/nodes/placement/", {"image_id": str(img.pk)}, format="json").json()
        assert [(h["host_name"], h["fits"], h["reasons"]) for h in plan["hosts"]] == [
            ("fits", True, []),
            ("short", False, ["cpu_cores"]),
            ("manual", False, ["scheduling"]),
        ]
        assert plan["hosts"][1]["shortfalls"] == [{"resource": "cpu_cores", "requested": 2, "available": 1}]
        assert plan["placements"][0]["score"] == pytest.approx((2 / 10 + 1 / 10 + 1 / 10) / 3)
        assert plan["error"] is None

    @pytest.mark.parametrize("body", [{"count": 0}, {"count": 1001}, {"count": "1"}, {"other": 1}, {}])
    def test_strict_input(self, admin_client, body):
        img = image()
        data = {"image_id": str(img.pk), **body} if body != {} else {}
        assert_problem(admin_client.post("/api/v1/nodes/placement/", data, format="json"), 400, "invalid")

    def test_needs_add_node(self, as_role):
        img = image()
        assert_problem(
            as_role("reader").post("/api/v1/nodes/placement/", {"image_id": str(img.pk)}, format="json"),
            403,
            "permission_denied",
        )

    def test_unknown_image_is_404(self, admin_client):
        response = admin_client.post(
            "/api/v1/nodes/placement/", {"image_id": "4a5892ab-1f6f-4eee-8a31-8aa2c407c3a1"}, format="json"
        )
        assert_problem(response, 404, "not_found")


class TestHeadroom:
    def test_every_dimension_limits_once(self, admin_client):
        img = image(cpu=2, memory=3, disk=5)
        host("cpu", cpu=4, memory=100, disk=100, region="r")  # 2 by cpu
        host("memory", cpu=100, memory=10, disk=100, region="r")  # 3 by memory
        host("disk", cpu=100, memory=100, disk=20, region="r")  # 4 by disk
        host("slots", cpu=100, memory=100, disk=100, max_nodes=1, region="s")  # 1 by slots
        host("full", cpu=1, memory=1, disk=1, region="s")  # 0
        host("draining", cpu=100, memory=100, disk=100, scheduling="draining", region="s")  # not counted
        response = admin_client.get(f"/api/v1/images/{img.pk}/headroom/")
        assert response.status_code == 200, response.content
        assert response.json() == {
            "image_id": str(img.pk),
            "requested": {"cpu_cores": 2, "memory_bytes": 3, "disk_bytes": 5},
            "nodes": 10,
            "hosts_with_room": 4,
            "regions": [{"region": "r", "nodes": 9}, {"region": "s", "nodes": 1}],
        }
        only_s = admin_client.get(f"/api/v1/images/{img.pk}/headroom/?region=s").json()
        assert (only_s["nodes"], only_s["regions"]) == (1, [{"region": "s", "nodes": 1}])
        none = admin_client.get(f"/api/v1/images/{img.pk}/headroom/?region=").json()
        assert (none["nodes"], none["regions"], none["hosts_with_room"]) == (0, [], 0)

    def test_nothing_bounds_an_image_that_needs_nothing(self, admin_client):
        img = image(cpu=0, memory=0, disk=0)
        host("a")
        body = admin_client.get(f"/api/v1/images/{img.pk}/headroom/").json()
        assert (body["nodes"], body["regions"]) == (None, [{"region": "", "nodes": None}])
        Host.objects.update(max_nodes=3)
        assert admin_client.get(f"/api/v1/images/{img.pk}/headroom/").json()["nodes"] == 3

    def test_needs_both_view_permissions(self):
        img = image()
        only_images = token_client(UserFactory(permissions=["nodes.view_image"]))
        assert_problem(only_images.get(f"/api/v1/images/{img.pk}/headroom/"), 403, "permission_denied")
        both = token_client(UserFactory(permissions=["nodes.view_image", "hosts.view_host"]))
        assert both.get(f"/api/v1/images/{img.pk}/headroom/").status_code == 200

    def test_unknown_query_parameter_is_refused(self, admin_client):
        img = image()
        assert_problem(admin_client.get(f"/api/v1/images/{img.pk}/headroom/?regoin=x"), 400, "invalid")
