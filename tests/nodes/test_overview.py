"""The fleet selector (nodes.overview, §12) against a fleet built by hand: every number, the
permissions of its panels, a fixed number of statements whatever the fleet's size, and no read
of the nodes table that an index does not bound."""

import json

import pytest
from django.db import connection
from django.db.models import Sum

from hosts.fleet import TILE_LIMIT, decile_histogram, host_tiles
from hosts.models import Host
from nodes.models import Node
from nodes.overview import fleet_overview
from tests.factories import GiB, HostFactory, ImageFactory, TiB, UserFactory, place_node
from tests.nodes.fleet_fixture import build_fleet

pytestmark = pytest.mark.django_db(transaction=True)

ALL = ["hosts.view_host", "nodes.view_node", "nodes.view_command", "nodes.view_rollout", "nodes.view_image"]


def viewer(permissions=ALL):
    return UserFactory(permissions=permissions)


def test_every_number_of_a_hand_built_fleet():
    fleet = build_fleet()

    overview = fleet_overview(user=viewer(), tiles=True)

    used = Node.objects.aggregate(cpu=Sum("cpu_cores"), memory=Sum("memory_bytes"), disk=Sum("disk_bytes"))
    capacity = overview["capacity"]
    assert capacity["cpu_cores"] == {
        "used": used["cpu"],
        "allocatable": 120 + 16 + 64 + 8,
        "physical": 64 + 16 + 64 + 8,
    }
    assert capacity["memory_bytes"] == {
        "used": used["memory"],
        "allocatable": (360 + 64 + 256 + 64) * GiB,
        "physical": (256 + 64 + 256 + 64) * GiB,
    }
    assert capacity["disk_bytes"]["physical"] == (8 + 4 + 2 + 4) * TiB == capacity["disk_bytes"]["allocatable"]
    assert capacity["disk_bytes"]["used"] == used["disk"]
    assert capacity["node_slots"] == {"used": 9, "allocatable": 0 + 10, "unlimited": 2}
    regions = {row["region"]: row for row in capacity["regions"]}
    assert [row["region"] for row in capacity["regions"]] == ["", "eu-1", "us-1"]
    assert regions["eu-1"]["cpu_cores"]["allocatable"] == 120 + 16
    assert regions["eu-1"]["hosts"] == 2 and regions["us-1"]["node_slots"] == {
        "used": 2,
        "allocatable": 10,
        "unlimited": 0,
    }
    eu_used = Node.objects.filter(host__region="eu-1").aggregate(m=Sum("memory_bytes"))["m"]
    assert regions["eu-1"]["memory_bytes"]["used"] == eu_used

    assert overview["hosts"] == {
        "total": 4,
        "offline": 1,
        "over_allocated": 1,
        "drifted": 2,
        "scheduling": {"automatic": 2, "manual": 1, "draining": 1},
    }
    assert overview["nodes"] == {"running": 6, "creating": 1, "upgrading": 1, "failed": 1}
    assert overview["commands"] == {"pending": 1, "acked": 1, "overdue": 1}
    assert overview["rollouts"] == {"planned": 0, "running": 1, "paused": 1, "halted": 1, "completed": 1, "aborted": 0}
    progress = {entry["rollout"].state: entry["progress"] for entry in overview["active_rollouts"]}
    assert progress["running"] == {"succeeded": 2, "failed": 0, "refused": 0, "pending": 1}
    assert progress["halted"] == {"succeeded": 0, "failed": 2, "refused": 0, "pending": 1}

    outcomes = overview["outcomes"]
    assert len(outcomes) == 24 and outcomes == sorted(outcomes, key=lambda entry: entry["hour"])
    assert sum(entry["succeeded"] for entry in outcomes) == 8 - 1  # one create_succeeded is 30 hours old
    assert sum(entry["failed"] for entry in outcomes) == 1
    assert sum(entry["rolled_back"] for entry in outcomes) == 1
    assert outcomes[-1]["succeeded"] + outcomes[-2]["succeeded"] == 7  # all of them within the last two hours

    last = overview["last_audit"]
    assert (last["host_findings"], last["node_findings"], last["drifted_hosts"]) == (3, 1, 2)
    assert [(run["host_findings"], run["node_findings"]) for run in overview["audits"]] == [(0, 0), (3, 1)]

    headroom = {entry["protocol"]: entry for entry in overview["headroom"]}
    assert headroom["ethereum"]["version"] == "1.10.0"  # PEP 440: 1.10 is newer than 1.9
    assert headroom["ethereum"]["requested"] == {"cpu_cores": 4, "memory_bytes": 16 * GiB, "disk_bytes": 100 * GiB}
    # Automatic hosts only: eu-a1 and zz-c1; zz-c1 has 2 free cores (8 - 6) -> 0 ethereum nodes.
    a1 = Host.objects.get(name="eu-a1")
    free = {
        "cpu": (a1.allocatable_cpu_cores - a1.node_cpu_cores) // 4,
        "memory": (a1.allocatable_memory_bytes - a1.node_memory_bytes) // (16 * GiB),
        "disk": (a1.allocatable_disk_bytes - a1.node_disk_bytes) // (100 * GiB),
    }
    assert headroom["ethereum"]["nodes"] == min(free.values())

    tiles = {tile["host"].name: tile for tile in overview["tiles"]}
    assert [tile["host"].name for tile in overview["tiles"]] == ["zz-c1", "eu-a1", "eu-a2", "us-b1"]  # region order
    assert tiles["zz-c1"]["marks"] == ["drifted"]
    assert tiles["eu-a1"]["marks"] == ["drifted"]
    assert tiles["eu-a2"]["marks"] == ["draining", "over-allocated"]
    assert tiles["us-b1"]["marks"] == ["offline", "manual"]
    c1 = Host.objects.get(name="zz-c1")
    assert tiles["zz-c1"]["highest"] == c1.node_cpu_cores / 8 == 0.75 and tiles["zz-c1"]["bucket"] == 7
    assert fleet.hosts  # the fixture's hosts


def test_the_histogram_counts_each_host_in_its_decile_as_the_tiles_do():
    build_fleet()
    HostFactory(name="empty", cpu_cores=0, memory_bytes=0, disk_bytes=0)  # nothing allocatable, nothing used

    by_tiles: dict[str, list[int]] = {}
    for tile in host_tiles(drifted=set()):
        by_tiles.setdefault(tile["region"], [0] * 11)[tile["bucket"]] += 1

    assert decile_histogram() == by_tiles
    assert by_tiles[""][7] == 1 and by_tiles[""][0] == 1  # zz-c1 at 75 %, the empty host at 0


def test_panels_show_only_to_users_who_may_view_what_they_count():
    build_fleet()

    overview = fleet_overview(user=viewer(["hosts.view_host"]))

    assert overview["nodes"] is overview["commands"] is overview["rollouts"] is None
    assert overview["outcomes"] is overview["headroom"] is None
    assert overview["capacity"]["node_slots"]["used"] == 9 and overview["hosts"]["total"] == 4
    partial = fleet_overview(user=viewer(["hosts.view_host", "nodes.view_command"]))
    assert partial["commands"] == {"pending": 1, "acked": 1, "overdue": 1} and partial["nodes"] is None


def test_no_audit_yet_is_said_and_marks_nothing():
    HostFactory()

    overview = fleet_overview(user=viewer(), tiles=True)

    assert overview["last_audit"] is None and overview["audits"] == [] and overview["hosts"]["drifted"] == 0
    assert overview["tiles"][0]["marks"] == []


def grow(hosts: int):
    image = ImageFactory(protocol="ethereum", version="2.0.0")
    for n in range(hosts):
        host = HostFactory(name=f"grow-{n:03d}", region=f"r{n % 3}")
        place_node(host=host, image=image, name=f"grow-node-{n:03d}")


@pytest.mark.parametrize("tiles", [True, False])
def test_a_fixed_number_of_statements_whatever_the_fleets_size(queries, tiles):
    user = viewer()
    user.has_perm("hosts.view_host")  # the permission cache, as in a request
    grow(3)
    with queries() as small:
        fleet_overview(user=user, tiles=tiles)
    grow_more = 27
    image = ImageFactory(protocol="ethereum", version="2.1.0")
    for n in range(grow_more):
        host = HostFactory(name=f"more-{n:03d}", region=f"r{n % 5}")
        place_node(host=host, image=image, name=f"more-node-{n:03d}")

    with queries() as large:
        fleet_overview(user=user, tiles=tiles)

    assert len(large) == len(small), "\n".join(large)
    assert len(small) <= 12


def test_past_the_tile_limit_a_histogram_replaces_the_tiles(monkeypatch):
    import nodes.overview

    build_fleet()
    monkeypatch.setattr(nodes.overview, "TILE_LIMIT", 3)

    overview = fleet_overview(user=viewer(), tiles=True)

    assert overview["tiles"] is None
    assert sum(sum(counts) for counts in overview["histogram"].values()) == 4
    assert TILE_LIMIT == 2000


def plan_nodes(plan):
    yield plan
    for child in plan.get("Plans", []):
        yield from plan_nodes(child)


def test_no_statement_reads_the_nodes_table_without_an_index_that_bounds_it():
    """Each statement that names nodes_node is EXPLAINed with sequential scans disabled: the
    planner then still scans sequentially only when no index can serve the statement, so a
    sequential (or unbounded) read of the nodes table fails the test."""
    build_fleet()
    grow(30)
    user = viewer()
    user.has_perm("hosts.view_host")
    statements = []

    def capture(execute, sql, params, many, context):
        statements.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        fleet_overview(user=user, tiles=True)

    node_reads = []
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        try:
            for sql, params in statements:
                if '"nodes_node"' not in sql:
                    continue
                cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
                plan = cursor.fetchone()[0]
                plan = (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]
                node_reads.extend(
                    node
                    for node in plan_nodes(plan)
                    if node.get("Relation Name") == "nodes_node" or node.get("Index Name") == "node_state_few"
                )
        finally:
            cursor.execute("SET enable_seqscan = on")

    assert node_reads, "the selector counts nodes by state"
    for node in node_reads:
        assert node["Node Type"] in ("Index Only Scan", "Index Scan", "Bitmap Heap Scan", "Bitmap Index Scan"), node
    assert {node["Index Name"] for node in node_reads if "Index Name" in node} == {"node_state_few"}
