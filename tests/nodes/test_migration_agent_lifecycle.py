"""The migration that brings §9 in (nodes 0002_agent_lifecycle): every Command written before it
closes as `succeeded` and `upgrading` nodes become `running`, so agents never replay old work."""

import uuid

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("nodes", "0002_nodelog_force_requested"), ("hosts", "0002_audit_run")]


@pytest.mark.django_db(transaction=True)
def test_existing_commands_close_as_succeeded_and_upgrading_nodes_run():
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    executor.migrate(BEFORE)
    try:
        old = MigrationExecutor(connection).loader.project_state(BEFORE).apps
        host = old.get_model("hosts", "Host").objects.create(
            name="h", cpu_cores=8, memory_bytes=8, disk_bytes=8, node_count=2
        )
        image = old.get_model("nodes", "Image").objects.create(protocol="eth", version="1")
        Node = old.get_model("nodes", "Node")
        upgrading = Node.objects.create(name="u", host=host, image=image, state="upgrading", properties={})
        running = Node.objects.create(name="r", host=host, image=image, state="running", properties={})
        Command = old.get_model("nodes", "Command")
        for kind in ("node_create", "node_upgrade", "node_upgrade"):  # two of one node: allowed before §9
            Command.objects.create(host=host, node_id=upgrading.pk, kind=kind, payload={})
        Command.objects.create(host=host, node_id=uuid.uuid4(), kind="node_delete", payload={})

        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(latest)
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(latest)

    from nodes.models import Command as NewCommand
    from nodes.models import Node as NewNode

    assert set(NewCommand.objects.values_list("status", flat=True)) == {"succeeded"}
    assert NewCommand.objects.filter(finished_at__isnull=True).count() == 0
    assert dict(NewNode.objects.values_list("pk", "state")) == {upgrading.pk: "running", running.pk: "running"}
