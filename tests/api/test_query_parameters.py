"""Unknown query parameters are 400 `invalid` naming them, on every operation (issue 11 §1):
`?host_id=` (the body field's name) must never list — or let a script delete — the whole fleet."""

import pytest
from django.urls import get_resolver, path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from config.http.query_parameters import documented_query_parameters
from nodes.models import Image
from tests.api.conftest import assert_problem, snapshot

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "query, name, message",
    [
        ("host_id={host}", "host_id", "Unknown query parameter; did you mean host?"),
        ("image_id={image}", "image_id", "Unknown query parameter; did you mean image?"),
        ("protocl=ethereum", "protocl", "Unknown query parameter; did you mean protocol?"),
        ("ordering=-name", "ordering", "Unknown query parameter."),
        ("search=eth", "search", "Unknown query parameter."),
        ("pagesize=1", "pagesize", "Unknown query parameter; did you mean page_size?"),
    ],
)
def test_an_unknown_parameter_on_the_nodes_list_is_invalid_naming_it(admin_client, fleet, query, name, message):
    query = query.format(host=fleet["host"].pk, image=fleet["v2"].pk)

    body = assert_problem(admin_client.get(f"/api/v1/nodes/?{query}"), 400, "invalid")

    assert body["errors"] == {name: [message]}
    assert name in body["detail"]


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/api/v1/hosts/?ordering=name"),
        ("get", "/api/v1/hosts/?search=host"),
        ("get", "/api/v1/images/?protocol=ethereum"),  # a filter of the nodes list only
        ("get", "/api/v1/hosts/{host}/?expand=nodes"),
        ("get", "/api/v1/images/{image}/?fields=id"),
        ("get", "/api/v1/nodes/{node}/?host={host}"),  # filters belong to the list, not the detail
        ("post", "/api/v1/nodes/?dry_run=true"),  # a body field, not a query parameter
        ("post", "/api/v1/images/?protocol=ethereum"),
        ("post", "/api/v1/nodes/{node}/upgrade/?dry_run=true"),
        ("delete", "/api/v1/nodes/{node}/?force=true"),
        ("get", "/api/v1/fleet/?region=eu-1"),  # the fleet answers for the whole fleet
    ],
)
def test_an_unknown_parameter_on_any_operation_is_invalid_and_changes_nothing(admin_client, fleet, method, path):
    before, images = snapshot(), Image.objects.count()
    path = path.format(host=fleet["host"].pk, image=fleet["v1"].pk, node=fleet["node"].pk)

    body = {"image_id": str(fleet["v2"].pk)} if path.endswith("upgrade/?dry_run=true") else None
    if path.startswith("/api/v1/images/?"):
        body = {"protocol": "ethereum", "version": "9.0.0"}
    response = getattr(admin_client, method)(path, body)

    assert_problem(response, 400, "invalid")
    assert snapshot() == before and Image.objects.count() == images


def test_several_unknown_parameters_are_all_named(admin_client, fleet):
    body = assert_problem(admin_client.get("/api/v1/nodes/?b=1&a=2&protocol=ethereum"), 400, "invalid")

    assert set(body["errors"]) == {"a", "b"}
    assert body["detail"].startswith("Unknown query parameters: a, b (this operation takes: ")


def test_the_documented_parameters_and_format_are_accepted(admin_client, fleet):
    host, image = fleet["host"].pk, fleet["v1"].pk
    query = f"host={host}&image={image}&protocol=ethereum&page_size=1&format=json"

    response = admin_client.get(f"/api/v1/nodes/?{query}")

    assert response.status_code == 200
    assert len(response.json()["results"]) == 1
    assert admin_client.get(f"/api/v1/hosts/{host}/?format=json").status_code == 200


def test_the_schema_page_keeps_its_own_parameters(client):
    assert client.get("/api/v1/schema/?format=json&lang=en").status_code == 200


def test_every_api_operation_is_checked_against_its_schema_operation(client):
    """The check reads each operation's parameters from the schema: every operation the schema
    documents is checked (a view added later is covered as it is added)."""
    checked = {}
    for view_func, route in _drf_views(get_resolver().url_patterns, ""):
        served = getattr(view_func, "actions", None) or [m for m in ("get", "post") if hasattr(view_func.cls, m)]
        for method in served:
            if method not in ("head", "options"):
                parameters = documented_query_parameters(view_func, method.upper(), route)
                if parameters is not None:
                    checked[(route, method)] = parameters

    schema = client.get("/api/v1/schema/?format=json").json()
    assert len(checked) == sum(len(item) for item in schema["paths"].values())
    assert checked[("api/v1/nodes/", "get")] == {"cursor", "page_size", "host", "image", "protocol"}
    assert checked[("api/v1/hosts/<uuid:pk>/", "get")] == set()


def _drf_views(patterns, prefix):
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if hasattr(pattern, "url_patterns"):
            yield from _drf_views(pattern.url_patterns, route)
        elif hasattr(pattern.callback, "cls"):
            yield pattern.callback, route


class SinceView(APIView):
    """A plain APIView as another part of the API might add one, with its own parameter."""

    permission_classes = [AllowAny]

    @extend_schema(parameters=[OpenApiParameter("since", int)], responses={200: None})
    def get(self, request):
        return Response({"since": request.query_params.get("since")})


urlpatterns = [path("api/v1/since/", SinceView.as_view())]  # ROOT_URLCONF of the test below


def test_a_view_added_later_is_checked_by_the_parameters_it_documents(client, settings):
    settings.ROOT_URLCONF = __name__

    assert client.get("/api/v1/since/?since=5").json() == {"since": "5"}
    body = assert_problem(client.get("/api/v1/since/?snce=5"), 400, "invalid")
    assert body["errors"] == {"snce": ["Unknown query parameter; did you mean since?"]}
    assert_problem(client.put("/api/v1/since/?snce=5"), 405, "method_not_allowed")  # not served: not checked
    assert client.options("/api/v1/since/?x=1").status_code == 200
