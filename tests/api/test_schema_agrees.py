"""The schema says what validation does (schemathesis): a request the schema calls valid is never
refused by a rule of its shape (a required field, a blank string, a length, a type), which the
schema could have said and did not. Rules the schema cannot state (a taken protocol@version,
control characters in a name, a property key the image lacks, a stale cursor) may still answer
400; they are named in the operations' descriptions, and their messages are not DRF's shape ones."""

import re

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework import fields, serializers
from schemathesis import GenerationMode

from tests.api.test_fuzz import _with_real_ids, fuzz_fleet, wsgi_app  # noqa: F401 (fixtures)

#: Per operation; the whole run stays within about a minute on the shared machine.
EXAMPLES_PER_OPERATION = 15

_FIELD_CLASSES = (
    fields.Field,
    fields.CharField,
    fields.IntegerField,
    fields.BooleanField,
    fields.UUIDField,
    fields.ListField,
    fields.DictField,
    fields.ChoiceField,
    serializers.Serializer,
)


def _shape_message(template: str) -> str:
    parts = re.split(r"\{[a-z_]+\}", str(template))
    return ".*".join(re.escape(part) for part in parts)


#: DRF's own messages of a field's shape (required, blank, null, length, range, type, list size),
#: and the strict serializers' "Unknown field.": the schema states every one of these rules.
SHAPE = re.compile(
    "^(?:"
    + "|".join(
        sorted(
            {_shape_message(message) for cls in _FIELD_CLASSES for message in cls.default_error_messages.values()}
            | {re.escape("Unknown field.")}
        )
    )
    + ")$"
)


def _messages(errors):
    if isinstance(errors, str):
        yield errors
    elif isinstance(errors, dict):
        for value in errors.values():
            yield from _messages(value)
    elif isinstance(errors, list):
        for value in errors:
            yield from _messages(value)


def test_the_shape_messages_are_drfs():
    assert SHAPE.match("This field is required.") and SHAPE.match("This field may not be blank.")
    assert SHAPE.match("Ensure this field has no more than 200 characters.")
    assert not SHAPE.match("Keys may not contain NUL characters.")


@pytest.mark.slow
def test_what_the_schema_calls_valid_is_not_refused_for_its_shape(wsgi_app, fuzz_fleet):  # noqa: F811
    schema = schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", wsgi_app)
    user_auth = {"Authorization": f"Token {fuzz_fleet['token']}"}
    agent_auth = {"Authorization": f"Bearer {fuzz_fleet['agent_token']}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    # The caller's own tokens last (revoke-all would end the run), as in test_fuzz.
    operations.sort(key=lambda op: (op.path.startswith("/api/v1/auth/"), op.path.endswith("/revoke-all/")))
    refused = []
    for operation in operations:
        auth = agent_auth if operation.path.startswith("/api/v1/agent/") else user_auth

        @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE), data=st.data())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def valid_is_accepted(case, data):
            _with_real_ids(case, fuzz_fleet, data)
            response = case.call(headers=auth)  # noqa: B023 (called at once, below)
            assert response.status_code < 500, (case.operation.label, case.body, response.text)
            if response.status_code == 400:
                body = response.json()
                shape = [m for m in _messages([body.get("errors"), body.get("detail")]) if SHAPE.match(m)]
                if shape:
                    refused.append((case.operation.label, case.path_parameters, case.query, case.body, shape))

        valid_is_accepted()
    assert refused == []
