"""The API fuzzed from its own OpenAPI schema (schemathesis): valid and invalid requests alike
never get a 5xx, and every answer conforms to the schema (status, content type, body)."""

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from hosts.agent_tokens import agent_token_issue
from nodes.changes import node_upgrade
from nodes.models import Command
from nodes.rollouts.models import Rollout
from tests.api.conftest import READ_PERMISSIONS
from tests.factories import HostFactory, ImageFactory, ImagePropertyFactory, UserFactory, place_node
from tokens.services import token_create

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
EXAMPLES_PER_OPERATION = 40


@pytest.fixture
def wsgi_app():
    """Django's own WSGI handler, in this test's transaction: like Django's test client, it must
    not close the connection at the end of each request."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield WSGIHandler()
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def fuzz_fleet(db):
    """Real ids the fuzzer may put in its requests, so some of them reach the services."""
    host = HostFactory()
    images = [ImageFactory(protocol="ethereum") for _ in range(3)] + [ImageFactory(protocol="bitcoin")]
    ImagePropertyFactory(image=images[0], key="archive", add_disk_bytes=10**12)
    ImagePropertyFactory(image=images[1], key="archive", add_disk_bytes=2 * 10**12)
    nodes = [place_node(host=host, image=images[i % 2], name=f"fuzz-{i}") for i in range(6)]
    node_upgrade(node_id=nodes[0].pk, image_id=images[2].pk)  # an open command besides closed ones
    user = UserFactory(
        permissions=[
            *READ_PERMISSIONS,
            "nodes.add_node",
            "nodes.add_image",
            "nodes.delete_node",
            "nodes.upgrade_node",
            "hosts.overcommit_host",
            "nodes.cancel_command",
            "nodes.view_rollout",
            "nodes.add_rollout",
            "nodes.change_rollout",
        ]
    )
    rollout = Rollout.objects.create(image=images[2])
    commands = [str(pk) for pk in Command.objects.filter(host=host).values_list("pk", flat=True)]
    return {
        "rollouts": [str(rollout.pk)],
        "hosts": [str(host.pk)],
        "images": [str(image.pk) for image in images],
        "nodes": [str(node.pk) for node in nodes],
        "commands": commands,
        "agent": commands,
        "token": token_create(user=user)[1],
        "agent_token": agent_token_issue(host=host),
    }


def _with_real_ids(case, fleet, data):
    """Half the time, swap the generated ids for ones that exist, so requests reach the services."""
    if "id" in (case.path_parameters or {}) and data.draw(st.booleans(), label="real path id"):
        kind = case.operation.path.split("/")[3]
        if kind in fleet:  # hosts, images, nodes (a token id is the caller's own business)
            case.path_parameters["id"] = data.draw(st.sampled_from(fleet[kind]), label="id")
    if isinstance(case.body, dict) and data.draw(st.booleans(), label="real body ids"):
        for field, kind in (("image_id", "images"), ("host_id", "hosts")):
            if field in case.body:
                case.body[field] = data.draw(st.sampled_from(fleet[kind]), label=field)


@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_the_api_answers_any_request_within_its_schema(wsgi_app, fuzz_fleet, mode):
    schema = schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", wsgi_app)
    user_auth = {"Authorization": f"Token {fuzz_fleet['token']}"}
    agent_auth = {"Authorization": f"Bearer {fuzz_fleet['agent_token']}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    # every method of every path (9 of them rollouts', PATCH of a node, POST of an image, POST and PATCH of a
    # host, the placement plan, an image's headroom, the fleet)
    assert len(operations) == 32
    # Deletes last (nodes to upgrade), then the caller's own tokens, revoke-all the very last.
    operations.sort(
        key=lambda operation: (
            operation.path.startswith("/api/v1/auth/"),
            operation.path.endswith("/revoke-all/"),
            operation.method.upper() == "DELETE",
        )
    )

    for operation in operations:
        auth = agent_auth if operation.path.startswith("/api/v1/agent/") else user_auth

        @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def answers_within_schema(case, data):
            if mode == GenerationMode.POSITIVE:  # a negative case must stay as invalid as it was made
                _with_real_ids(case, fuzz_fleet, data)
            case.call_and_validate(headers=auth, checks=CHECKS)  # noqa: B023 (called at once, below)

        answers_within_schema()
