"""The REST API's plumbing, shared by every endpoint: strict JSON parsing, content negotiation,
cursor pagination and OPTIONS metadata. Named in settings.REST_FRAMEWORK, so nothing here may
import DRF's views (they import these classes)."""

import json

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework.exceptions import NotAcceptable, NotFound, ParseError, ValidationError
from rest_framework.metadata import SimpleMetadata
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import BaseParser
from rest_framework.utils.mediatypes import _MediaType

from config.http.exceptions import PROBLEM_CONTENT_TYPE, RequestTooLarge


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _refuse_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    """An object naming a key twice is ambiguous (RFC 8259 leaves it to the parser; Python keeps
    the last one, another client's library the first): refused, never guessed."""
    document = dict(pairs)
    if len(document) != len(pairs):
        seen = set()
        duplicates = sorted({key for key, _ in pairs if key in seen or seen.add(key)})
        raise ValueError(f"duplicate key{'s' if len(duplicates) > 1 else ''} {', '.join(map(repr, duplicates))}")
    return document


class StrictJSONParser(BaseParser):
    """JSON bodies in UTF-8 (RFC 8259), at most DATA_UPLOAD_MAX_MEMORY_SIZE bytes; anything that
    cannot be read (bad UTF-8, NaN, a key given twice in one object, nesting too deep for the
    parser) is a 400, never a 500."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        body = b"" if stream is None else stream.read(-1 if limit is None else limit + 1)
        if limit is not None and len(body) > limit:
            raise RequestTooLarge(f"The request body is larger than {limit} bytes.")
        try:
            return json.loads(
                body.decode("utf-8"), parse_constant=_refuse_constant, object_pairs_hook=_refuse_duplicate_keys
            )
        except UnicodeDecodeError as error:
            raise ParseError(f"The body is not valid UTF-8 (byte {error.start}).") from None
        except RecursionError:
            raise ParseError("The JSON document is nested too deeply.") from None
        except ValueError as error:
            raise ParseError(f"JSON parse error: {error}") from None


class ProblemAwareNegotiation(DefaultContentNegotiation):
    """DRF's negotiation, plus: a client that accepts only `application/problem+json` (one that
    expects its errors) gets JSON. Errors are then problem details, successes plain JSON — the
    only representation there is, so an answer is better than a 406 for everything."""

    _problem = _MediaType(PROBLEM_CONTENT_TYPE)

    def select_renderer(self, request, renderers, format_suffix=None):
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except NotAcceptable:
            json_renderers = [renderer for renderer in renderers if renderer.format == "json"]
            accepts = self._get_parsed_accept_list(request)
            if json_renderers and any(self._problem.match(accept) for accept in accepts):
                return json_renderers[0], json_renderers[0].media_type
            raise


class DescriptiveMetadata(SimpleMetadata):
    """OPTIONS: the endpoint's name, description and media types. Its fields are described by the
    OpenAPI schema; DRF's guess (the output serializer's fields, as if writable) would mislead."""

    def determine_actions(self, request, view):
        return {}


class StrictCursorPagination(CursorPagination):
    """Cursor pagination (no COUNT) whose cursor and page size are checked: a malformed one is a
    400 `invalid`, never a query with a value the column cannot hold."""

    page_size = 100
    max_page_size = 1000
    page_size_query_param = "page_size"
    ordering = "name"

    def paginate_queryset(self, queryset, request, view=None):
        self.model = queryset.model
        return super().paginate_queryset(queryset, request, view)

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 6 and 1 <= int(raw) <= self.max_page_size):
            raise ValidationError({self.page_size_query_param: [f"An integer from 1 to {self.max_page_size}."]})
        return int(raw)

    def decode_cursor(self, request):
        invalid = ValidationError({self.cursor_query_param: ["Invalid cursor."]})
        try:
            cursor = super().decode_cursor(request)
        except NotFound:  # DRF's answer to a malformed cursor; it is malformed input, so a 400
            raise invalid from None
        if cursor is not None and cursor.position is not None:
            field = self.model._meta.get_field(self.ordering[0].lstrip("-"))
            if "\x00" in cursor.position:
                raise invalid
            try:
                field.to_python(cursor.position)
            except DjangoValidationError:
                raise invalid from None
        return cursor

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update({"minimum": 1, "maximum": self.max_page_size})
        return parameters
