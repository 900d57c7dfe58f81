import pytest

from nodes.changes import node_upgrade
from tests.factories import HostFactory, ImageFactory, place_node


@pytest.mark.django_db
def test_upgrade_moves_counters():
    host = HostFactory()
    old, new = ImageFactory(min_cpu_cores=2), ImageFactory(min_cpu_cores=6)
    node = place_node(host=host, image=old)
    node_upgrade(node_id=node.pk, image_id=new.pk)
    host.refresh_from_db()
    assert host.node_cpu_cores == 6
