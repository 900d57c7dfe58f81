"""The API's field vocabulary: strict input fields (types exactly as JSON sends them, unknown
fields refused: DRF's own fields coerce, "1" -> True, 5 -> UUID(int=5), 5 -> "5"; these do not),
exact 64-bit integers, resources and problems as fields, and the model serializers' base."""

import copy
from collections.abc import Mapping

from django.db import models
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config.http.openapi import Problem


class StrictUUIDField(serializers.UUIDField):
    """A UUID given as a JSON string, nothing else (DRF's UUIDField also takes integers)."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """JSON `true` or `false` only (DRF's BooleanField also takes "yes", 1, "on"...)."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


def _refuse_unencodable(value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise serializers.ValidationError("Must be valid Unicode text (no lone surrogates).") from None


class StrictCharField(serializers.CharField):
    """A JSON string, kept as sent (no trimming); no NUL character, no lone surrogate. Unless
    allow_blank, at least one character, which the schema says (`minLength: 1`)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("trim_whitespace", False)
        if not kwargs.get("allow_blank", False):
            kwargs.setdefault("min_length", 1)
        super().__init__(**kwargs)
        self.validators.append(_refuse_unencodable)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer, nothing else (DRF's IntegerField also takes "5", 5.0 and true)."""

    def to_internal_value(self, data):
        if not isinstance(data, int) or isinstance(data, bool):
            self.fail("invalid")
        return super().to_internal_value(data)


class PropertiesField(serializers.DictField):
    """A node's config: an object of string values whose keys are plain text."""

    child = StrictCharField(allow_blank=True)

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            for key in data:
                if "\x00" in key:
                    raise serializers.ValidationError("Keys may not contain NUL characters.")
                _refuse_unencodable(key)
        return super().to_internal_value(data)


class StrictInputSerializer(serializers.Serializer):
    """Refuses a field it does not declare, besides the errors of the fields it does."""

    def to_internal_value(self, data):
        unknown = sorted(set(data) - set(self.fields)) if isinstance(data, Mapping) else []
        errors = {key: ["Unknown field."] for key in unknown}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as error:
            raise serializers.ValidationError({**errors, **error.detail}) from None
        if errors:
            raise serializers.ValidationError(errors)
        return value


class StrictChoiceField(serializers.ChoiceField):
    """One of the choices, given as a JSON string."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid_choice", input=data)
        return super().to_internal_value(data)


@extend_schema_field(OpenApiTypes.INT64)
class Int64Field(serializers.IntegerField):
    """An exact integer documented as int64 (counters and allocations are PostgreSQL bigints)."""


class FleetModelSerializer(serializers.ModelSerializer):
    """A read-only model serializer whose fields are built from the model once per class and
    copied for each instance: DRF introspects the model anew for every instance, which made up
    most of the 0.7 ms of CPU an upgrade's answer took to render (docs/performance.md)."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.BigIntegerField: Int64Field,
    }

    def get_fields(self):
        built = type(self).__dict__.get("_built_fields")
        if built is None:
            built = super().get_fields()
            type(self)._built_fields = built
        return copy.deepcopy(built)


class ResourcesSerializer(serializers.Serializer):
    cpu_cores = Int64Field(read_only=True)
    memory_bytes = Int64Field(read_only=True)
    disk_bytes = Int64Field(read_only=True)


@extend_schema_field(Problem)
class ProblemField(serializers.Field):
    def to_representation(self, error):
        return error.as_problem()
