"""The database's backstops: CHECK and unique constraints, PROTECT, immutable images in use."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError

from hosts.models import Host
from nodes.models import Image, ImageProperty, Node
from tests.factories import HostFactory, ImageFactory, ImagePropertyFactory, place_node

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "field", ["node_count", "node_cpu_cores", "node_memory_bytes", "node_disk_bytes", "cpu_cores", "disk_bytes"]
)
def test_host_amounts_cannot_go_negative_in_the_database(field):
    host = HostFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Host.objects.filter(pk=host.pk).update(**{field: -1})


@pytest.mark.parametrize("field", ["cpu_cores", "memory_bytes", "disk_bytes"])
def test_node_allocation_cannot_go_negative_in_the_database(field):
    node = place_node(host=HostFactory(), image=ImageFactory())
    with pytest.raises(IntegrityError), transaction.atomic():
        Node.objects.filter(pk=node.pk).update(**{field: -1})


def test_image_protocol_and_version_are_unique():
    ImageFactory(protocol="bitcoin", version="27.0")
    with pytest.raises(IntegrityError), transaction.atomic():
        ImageFactory(protocol="bitcoin", version="27.0")


def test_property_keys_are_unique_per_image():
    prop = ImagePropertyFactory(key="rpc")
    with pytest.raises(IntegrityError), transaction.atomic():
        ImageProperty.objects.create(image=prop.image, key="rpc", default_value="x")


def test_hosts_and_images_with_nodes_are_protected():
    host, image = HostFactory(), ImageFactory()
    place_node(host=host, image=image)
    with pytest.raises(ValidationError, match="holds 1 node"):  # counted under the host's lock
        host.delete()
    with pytest.raises(ProtectedError), transaction.atomic():  # and the FK's PROTECT behind it
        Host.objects.filter(pk=host.pk).delete()
    with pytest.raises(ValidationError, match="cannot be deleted"):
        image.delete()
    assert Image.objects.filter(pk=image.pk).exists()


def test_an_image_in_use_keeps_its_requirements():
    image = ImageFactory(min_cpu_cores=2)
    place_node(host=HostFactory(), image=image)
    image.min_cpu_cores = 1
    with pytest.raises(ValidationError, match="can no longer change"):
        image.full_clean()
    with pytest.raises(ValidationError):
        image.save()
    assert Image.objects.get(pk=image.pk).min_cpu_cores == 2


def test_an_image_in_use_keeps_its_properties():
    prop = ImagePropertyFactory()
    place_node(host=HostFactory(), image=prop.image)
    prop.add_cpu_cores = 9
    with pytest.raises(ValidationError, match="can no longer change"):
        prop.save()
    with pytest.raises(ValidationError):
        prop.delete()
    with pytest.raises(ValidationError):
        ImageProperty(image=prop.image, key="new").save()
    assert ImageProperty.objects.get(pk=prop.pk).add_cpu_cores is None


def test_an_unused_image_may_change():
    image = ImageFactory(min_cpu_cores=2)
    image.min_cpu_cores = 1
    image.full_clean()
    image.save()
    ImagePropertyFactory(image=image).delete()
    assert Image.objects.get(pk=image.pk).min_cpu_cores == 1
