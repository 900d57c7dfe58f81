"""The hot answers of the REST API as plain dicts, one function per shape (issue 22): the same
JSON as the serializers of nodes.api.serializers, which still document them in the OpenAPI
schema, without DRF's field machinery (about 0.4 ms of CPU per upgrade answer). Dumped by
config.http.answers.json_answer. tests/api/test_answers.py holds each to its serializer's
output and tests/api/test_schema_conformance.py every real answer to the schema."""

from config.units import RESOURCES
from hosts.capacity import ALLOCATABLE, RATIO, RESERVED, free
from hosts.models import COUNTER_OF_RESOURCE, Host
from nodes.models import Node


def host_answer(host: Host) -> dict:
    """HostSerializer's shape: capacity, the capacity model (§11; ratios as 4-place strings),
    allocatable, counters and free capacity (allocatable - counters)."""
    return {
        "id": host.id,
        "name": host.name,
        **{resource: getattr(host, resource) for resource in RESOURCES},
        **{field: getattr(host, field) for field in RESERVED.values()},
        **{field: f"{getattr(host, field):.4f}" for field in RATIO.values()},
        "max_nodes": host.max_nodes,
        "region": host.region,
        "scheduling": host.scheduling,
        **{field: getattr(host, field) for field in ALLOCATABLE.values()},
        "node_count": host.node_count,
        **{counter: getattr(host, counter) for counter in COUNTER_OF_RESOURCE.values()},
        **{f"free_{resource}": free(host, resource) for resource in RESOURCES},
    }


def node_answer(node: Node) -> dict:
    """NodeSerializer's shape."""
    return {
        "id": node.id,
        "name": node.name,
        "host_id": node.host_id,
        "image_id": node.image_id,
        "properties": node.properties,
        "cpu_cores": node.cpu_cores,
        "memory_bytes": node.memory_bytes,
        "disk_bytes": node.disk_bytes,
        "state": str(node.state),
        "auto_upgrade": node.auto_upgrade,
        "created_at": node.created_at,
        "updated_at": node.updated_at,
    }


def _resources(resources) -> dict:
    return {
        "cpu_cores": resources.cpu_cores,
        "memory_bytes": resources.memory_bytes,
        "disk_bytes": resources.disk_bytes,
    }


def upgrade_answer(outcome) -> dict:
    """UpgradeSerializer's shape: an applied upgrade (nodes.changes.UpgradeOutcome), the node
    and its host after it, and the change."""
    return {
        "node": node_answer(outcome.node),
        "host": host_answer(outcome.host),
        "upgrade": {
            "from_image_id": outcome.from_image.id,
            "to_image_id": outcome.to_image.id,
            "old": _resources(outcome.old),
            "new": _resources(outcome.new),
            "delta": _resources(outcome.delta),
        },
    }
