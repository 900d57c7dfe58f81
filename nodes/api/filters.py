"""Filters of the nodes list (django-filter): by host, by image, by the image's protocol."""

import django_filters
from django import forms
from django.core.exceptions import ValidationError

from nodes.models import Node


class GivenUUIDField(forms.UUIDField):
    """A UUID, or no parameter at all: unlike django-filter's default, `?host=` is not ignored."""

    def to_python(self, value):
        if value == "":
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        return super().to_python(value)


class StrictUUIDFilter(django_filters.UUIDFilter):
    field_class = GivenUUIDField


class NodeFilter(django_filters.FilterSet):
    host = StrictUUIDFilter(field_name="host_id", help_text="Only the nodes of this host (its id).")
    image = StrictUUIDFilter(field_name="image_id", help_text="Only the nodes running this image (its id).")
    protocol = django_filters.CharFilter(field_name="image__protocol", help_text="Only the nodes of this protocol.")

    class Meta:
        model = Node
        fields = ["host", "image", "protocol"]
