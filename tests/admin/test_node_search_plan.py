"""The admin's node search holds at a million nodes by its plan, asserted where a time cannot be
(issue 22): the statements the search page sends to nodes_node go through the name's trigram
index — no Seq Scan of nodes_node, no walk of the name's B-tree in page order — and the match
runs once for a result that fits on a page (no COUNT(*) beside the page). The test fleet is
small, so the planner is told a table scan is not an option (`enable_seqscan = off`), as it is
in effect at 1,000,000 nodes; an expression the index cannot serve still plans a Seq Scan."""

import json
import uuid

import pytest
from django.db import connection, transaction

from hosts.models import Host
from nodes.models import Node
from tests.admin.conftest import client_for, staff
from tests.factories import GiB, ImageFactory

#: Committed (transaction=True) so the fleet can be VACUUMed: the plan must not depend on the dead
#: rows and index entries earlier tests' rolled-back writes left in nodes_node and its indexes.
pytestmark = pytest.mark.django_db(transaction=True)

HOSTS, NODES_PER_HOST = 20, 100


@pytest.fixture
def named_fleet():
    image = ImageFactory()
    hosts = Host.objects.bulk_create(
        Host(name=f"host-{h:05d}", cpu_cores=10**6, memory_bytes=10**6 * GiB, disk_bytes=10**6 * GiB)
        for h in range(HOSTS)
    )
    Node.objects.bulk_create(
        Node(id=uuid.uuid4(), name=f"host-{h:05d}-node-{n:03d}", host=host, image=image, properties={})
        for h, host in enumerate(hosts)
        for n in range(NODES_PER_HOST)
    )
    with connection.cursor() as cursor:
        for table in ("hosts_host", "nodes_node", "nodes_image"):
            cursor.execute(f"VACUUM ANALYZE {connection.ops.quote_name(table)}")


def search_statements(client, query: str) -> list[tuple[str, list]]:
    """The statements on nodes_node of one search page, with their parameters."""
    sent = []

    def record(execute, sql, params, many, context):
        if '"nodes_node"' in sql and "LIKE" in sql:
            sent.append((sql, list(params or [])))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        assert client.get("/admin/nodes/node/", {"q": query}).status_code == 200
    return sent


def plan_nodes(sql: str, params: list) -> list[dict]:
    with transaction.atomic(), connection.cursor() as cursor:  # SET LOCAL lasts for this transaction
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
        cursor.execute("RESET enable_seqscan")
    plan = json.loads(plan) if isinstance(plan, str) else plan
    found, todo = [], [plan[0]["Plan"]]
    while todo:
        node = todo.pop()
        found.append(node)
        todo.extend(node.get("Plans", []))
    return found


def scans_of_nodes(sql: str, params: list) -> set[tuple[str, str | None]]:
    """(node type, index) of every scan of nodes_node in the plan, bitmap index scans included
    (under enable_seqscan = off, a scan the trigram index cannot serve reads a whole other index)."""
    plan = plan_nodes(sql, params)
    heap = {(node["Node Type"], node.get("Index Name")) for node in plan if node.get("Relation Name") == "nodes_node"}
    bitmaps = {(node["Node Type"], node["Index Name"]) for node in plan if node["Node Type"] == "Bitmap Index Scan"}
    return heap | bitmaps


TRIGRAM_ONLY = {("Bitmap Heap Scan", None), ("Bitmap Index Scan", "nodes_node_name_trgm")}


@pytest.mark.parametrize("query", ["host-00013-node-042", "00013-node-04"], ids=["a full name", "part of a name"])
def test_the_node_search_uses_the_trigram_index_once(named_fleet, query):
    client = client_for(staff())

    statements = search_statements(client, query)

    assert len(statements) == 1, [sql for sql, _ in statements]  # the page; its rows are the count
    sql, params = statements[0]
    assert scans_of_nodes(sql, params) == TRIGRAM_ONLY


def test_a_search_past_one_page_reads_the_page_then_counts_without_a_table_scan(named_fleet):
    client = client_for(staff())

    statements = search_statements(client, "node-04")  # 10 nodes a host, 200 in all: 2 pages

    assert [sql.split()[1] for sql, _ in statements][:1] == ['"nodes_node"."id",'], statements  # the page first
    count = [(sql, params) for sql, params in statements if "COUNT(*)" in sql]
    assert len(count) == 1 and scans_of_nodes(*count[0]) == TRIGRAM_ONLY
    for sql, params in statements:
        # The page may walk the name's B-tree in order here: every row matches, 101 are read.
        assert "Seq Scan" not in {kind for kind, _index in scans_of_nodes(sql, params)}, sql


def test_the_check_can_fail_an_expression_the_index_cannot_serve(named_fleet):
    sql = 'SELECT COUNT(*) FROM "nodes_node" WHERE LOWER("nodes_node"."name"::text) LIKE %s'

    assert scans_of_nodes(sql, ["%node-042%"]) != TRIGRAM_ONLY
    assert "nodes_node_name_trgm" not in {index for _kind, index in scans_of_nodes(sql, ["%node-042%"])}
