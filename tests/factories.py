"""factory_boy factories for the fleet. Counters of hosts made here start at zero: put nodes on
them through the services (or `place_node`) so the counters stay the sum of their nodes."""

import itertools

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from hosts.models import Host
from nodes.agent.lifecycle import command_result
from nodes.changes import node_create
from nodes.models import OPEN_STATUSES, Command, Image, ImageProperty

GiB = 1024**3
TiB = 1024**4


class HostFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Host

    name = factory.Sequence(lambda n: f"host-{n:04d}")
    cpu_cores = 64
    memory_bytes = 256 * GiB
    disk_bytes = 8 * TiB


class ImageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Image

    protocol = "ethereum"
    version = factory.Sequence(lambda n: f"1.{n}.0")
    min_cpu_cores = 2
    min_memory_bytes = 8 * GiB
    min_disk_bytes = 500 * GiB


class ImagePropertyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ImageProperty

    image = factory.SubFactory(ImageFactory)
    key = factory.Sequence(lambda n: f"key{n}")
    default_value = "off"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw-for-tests")

    @factory.post_generation
    def permissions(self, create, extracted, **kwargs):
        """UserFactory(permissions=["nodes.upgrade_node", ...])"""
        for label in extracted or ():
            app_label, codename = label.split(".")
            self.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))


_node_numbers = itertools.count(1)


def place_node(*, host, image, name=None, properties=None, force=False, running=True):
    """A node created through the service, so its host's counters count it; `running` (its
    agent reported the create succeeded, §9) unless running=False (still `creating`)."""
    name = name or f"node-{next(_node_numbers):05d}"
    node = node_create(name=name, host_id=host.pk, image_id=image.pk, properties=properties, force=force).node
    if running:
        report(node, "succeeded")
        node.refresh_from_db()
    return node


def report(node, outcome, **kwargs):
    """The node's agent reports `outcome` on the node's open command (nodes.agent.lifecycle)."""
    command = Command.objects.get(node_id=node.pk, status__in=OPEN_STATUSES)
    return command_result(command_id=command.pk, host_id=command.host_id, outcome=outcome, **kwargs)
