"""The admin's name search (`?q=`, `icontains`) can use the trigram indexes (PostgreSQL)."""

import pytest
from django.db import connection

from hosts.models import Host
from nodes.models import Node

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("model", "index"), [(Node, "nodes_node_name_trgm"), (Host, "hosts_host_name_trgm")])
def test_the_name_search_of_the_admin_is_an_index_lookup(model, index):
    queryset = model.objects.filter(name__icontains="ode-00042").order_by().values("pk")
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        # A test table is nearly empty: leave the planner only the scans that can serve a search
        # without reading the whole table (a plain index scan of the name's btree would, in order).
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert f"Bitmap Index Scan on {index}" in plan, plan
