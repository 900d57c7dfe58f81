"""Unknown query parameters are refused (400 `invalid`, naming them), on every API operation.

A misspelt filter silently ignored widens the answer: `GET /api/v1/nodes/?host_id=<uuid>` (the
body field's name, not the filter's) listed the whole fleet, and a script deleting "the nodes
of host X" would have deleted every node. So the query string is held to the same rule as a
body: what is not declared is refused.

What an operation declares is read from its own OpenAPI operation (drf-spectacular: filters,
pagination, extend_schema parameters), so the schema and the check can never disagree, and a
view added later is covered without doing anything. Besides those, DRF's `format` override is
accepted everywhere. Views the schema leaves out (the schema and docs pages themselves) and
methods an endpoint does not serve (its 405) are not checked.

The check runs before the view, so before authentication: a query string holds nothing secret,
and its names are public in the schema."""

import difflib
import threading

from django.conf import settings
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.plumbing import ComponentRegistry
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from config import errors
from config.http.exceptions import problem_response

_NOT_DOCUMENTED = None
_lock = threading.Lock()
_documented: dict[tuple, frozenset[str] | None] = {}


def documented_query_parameters(view_func, method: str, route: str) -> frozenset[str] | None:
    """The query parameters the OpenAPI operation of (view, method) documents; None when the
    schema has no such operation. Computed once per view and method."""
    actions = getattr(view_func, "actions", None)
    key = (view_func, method)
    if key not in _documented:
        served = method.lower() in actions if actions is not None else hasattr(view_func.cls, method.lower())
        if method == "OPTIONS" or not served:
            names = _NOT_DOCUMENTED
        else:
            with _lock:  # drf-spectacular's generator keeps state while it inspects a view
                generator = SchemaGenerator()  # held: the view's schema refers to it weakly
                view = generator.create_view(view_func, method)
                operation = view.schema.get_operation(
                    "/" + route,
                    "",
                    f"^{settings.SPECTACULAR_SETTINGS['SCHEMA_PATH_PREFIX']}",
                    method,
                    ComponentRegistry(),
                )
            names = (
                _NOT_DOCUMENTED
                if operation is None
                else frozenset(
                    parameter["name"] for parameter in operation.get("parameters", []) if parameter["in"] == "query"
                )
            )
        _documented[key] = names
    return _documented[key]


def _message(name: str, known: frozenset[str]) -> str:
    guess = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return f"Unknown query parameter; did you mean {guess[0]}?" if guess else "Unknown query parameter."


class UnknownQueryParameterMiddleware:
    """Answers 400 `invalid` to an API request whose query string names a parameter its
    operation does not document (`errors`: each unknown name, with a guess when one is close)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        cls = getattr(view_func, "cls", None)
        if not request.GET or not (isinstance(cls, type) and issubclass(cls, APIView)):
            return None
        method = "GET" if request.method == "HEAD" else request.method
        documented = documented_query_parameters(view_func, method, request.resolver_match.route)
        if documented is None:
            return None
        known = documented | {api_settings.URL_FORMAT_OVERRIDE}
        unknown = sorted(set(request.GET) - known)
        if not unknown:
            return None
        field_errors = {name: [_message(name, known)] for name in unknown}
        accepted = ", ".join(sorted(known))
        return problem_response(
            errors.InvalidInput(
                f"Unknown query parameter{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)} "
                f"(this operation takes: {accepted}).",
                errors=field_errors,
            )
        )
