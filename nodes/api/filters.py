"""Filters of the nodes list (django-filter): by host, by image, by the image's protocol."""

import django_filters

from nodes.models import Node


class NodeFilter(django_filters.FilterSet):
    host = django_filters.UUIDFilter(field_name="host_id", help_text="Only the nodes of this host (its id).")
    image = django_filters.UUIDFilter(field_name="image_id", help_text="Only the nodes running this image (its id).")
    protocol = django_filters.CharFilter(field_name="image__protocol", help_text="Only the nodes of this protocol.")

    class Meta:
        model = Node
        fields = ["host", "image", "protocol"]
