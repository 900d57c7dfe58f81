"""The admin's name search (`?q=`, `icontains`) can use the trigram indexes (PostgreSQL)."""

import pytest
from django.db import connection

from hosts.models import Host
from nodes.models import Node

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("model", "index"), [(Node, "nodes_node_name_trgm"), (Host, "hosts_host_name_trgm")])
def test_the_name_search_of_the_admin_is_an_index_lookup(model, index):
    sql, params = model.objects.filter(name__icontains="ode-00042").values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a test table is small: make the planner show its choice
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert f"Bitmap Index Scan on {index}" in plan, plan
