"""The invariant every test of a change ends with, computed independently of the app's code."""

from django.db import connection

TRUTH_SQL = """
    SELECT h.id, h.node_count, h.node_cpu_cores, h.node_memory_bytes, h.node_disk_bytes,
           COUNT(n.id), COALESCE(SUM(n.cpu_cores), 0), COALESCE(SUM(n.memory_bytes), 0),
           COALESCE(SUM(n.disk_bytes), 0)
    FROM hosts_host h LEFT JOIN nodes_node n ON n.host_id = h.id
    GROUP BY h.id
"""


def counter_drift() -> dict:
    """{host id: (recorded counters, true counters)} for every host whose counters are off."""
    with connection.cursor() as cursor:
        cursor.execute(TRUTH_SQL)
        rows = cursor.fetchall()
    return {row[0]: (row[1:5], row[5:9]) for row in rows if tuple(row[1:5]) != tuple(row[5:9])}


def assert_counters_exact():
    drift = counter_drift()
    assert drift == {}, f"counters disagree with nodes: {drift}"
