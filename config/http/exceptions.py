"""The one place that turns errors into HTTP answers under /api/: RFC 9457 problem details
(`application/problem+json`) built from config.errors.ApplicationError, for our own refusals,
DRF's exceptions and Django's own 400/403/404/413/500 alike."""

import json
import math
import re

from django.core.exceptions import DisallowedHost, RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpResponse
from django.urls import Resolver404, resolve
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions as drf
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.settings import api_settings

from config import errors

PROBLEM_CONTENT_TYPE = "application/problem+json"


class HttpProblem(errors.ApplicationError):
    """An HTTP-level refusal that §4's table lacks (405, 406, 413, 415, 429, 500): DRF's code."""

    def __init__(self, detail: str, *, code: str, status: int, title: str, **extra):
        super().__init__(detail, **extra)
        self.code, self.status, self.title = code, status, title


class RequestTooLarge(drf.APIException):
    """A request body past DATA_UPLOAD_MAX_MEMORY_SIZE (raised by config.http.api.StrictJSONParser)."""

    status_code = 413
    default_detail = "The request body is too large."
    default_code = "request_too_large"


def _messages(detail):
    """DRF's error detail (ErrorDetail strings, nested in lists and dicts) as plain JSON data."""
    if isinstance(detail, dict):
        return {str(key): _messages(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [_messages(item) for item in detail]
    return str(detail)


def _field_errors(detail) -> dict:
    """`errors` of a 400: always an object; errors not tied to a field go under non_field_errors."""
    messages = _messages(detail)
    return messages if isinstance(messages, dict) else {api_settings.NON_FIELD_ERRORS_KEY: messages}


_TITLES = {
    405: "Method not allowed",
    406: "Not acceptable",
    413: "Request too large",
    415: "Unsupported media type",
    429: "Too many requests",
}


def application_error(exc: Exception) -> errors.ApplicationError | None:
    """The ApplicationError an exception answers as, or None for an unexpected one (a bug: 500)."""
    if isinstance(exc, errors.ApplicationError):
        return exc
    if isinstance(exc, Http404):
        return errors.NotFound(str(exc) or "Not found.")
    if isinstance(exc, DjangoPermissionDenied):
        return errors.PermissionDenied(str(exc) or "You do not have permission to perform this action.")
    if isinstance(exc, RequestDataTooBig):
        return HttpProblem(str(exc), code=RequestTooLarge.default_code, status=413, title=_TITLES[413])
    if isinstance(exc, SuspiciousOperation):
        # Django's message for a bad Host header suggests a setting: it is for the log, not the caller.
        reason = "The Host header names no site served here." if isinstance(exc, DisallowedHost) else str(exc)
        return errors.InvalidInput("The request is malformed.", errors={api_settings.NON_FIELD_ERRORS_KEY: [reason]})
    if isinstance(exc, OperationalError | InterfaceError):
        # Reads are not wrapped by config.db.atomic_with_retry: a lost or refused connection is busy too.
        return errors.Busy("The database is not available now; try again.")
    if isinstance(exc, drf.ValidationError):
        field_errors = _field_errors(exc.detail)
        return errors.InvalidInput(f"Invalid input: {', '.join(field_errors)}.", errors=field_errors)
    if isinstance(exc, drf.ParseError):
        return errors.InvalidInput(
            "The request body is not valid JSON.", errors={api_settings.NON_FIELD_ERRORS_KEY: [str(exc.detail)]}
        )
    if isinstance(exc, drf.NotAuthenticated | drf.AuthenticationFailed) and exc.status_code == 401:
        return errors.NotAuthenticated(str(exc.detail))
    if isinstance(exc, drf.NotAuthenticated | drf.AuthenticationFailed | drf.PermissionDenied):
        return errors.PermissionDenied(str(exc.detail))
    if isinstance(exc, drf.NotFound):
        return errors.NotFound(str(exc.detail))
    if isinstance(exc, drf.APIException):
        status = exc.status_code
        detail = exc.detail if isinstance(exc.detail, str) else "The request was refused."
        return HttpProblem(str(detail), code=exc.default_code, status=status, title=_TITLES.get(status, "Error"))
    return None


def problem_headers(exc: Exception, error: errors.ApplicationError) -> dict[str, str]:
    """WWW-Authenticate and Retry-After, where the error has them."""
    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if isinstance(error, errors.Busy):
        headers["Retry-After"] = str(error.retry_after)
    if isinstance(exc, drf.Throttled) and exc.wait is not None:
        headers["Retry-After"] = str(max(1, math.ceil(exc.wait)))
    return headers


def problem_exception_handler(exc: Exception, context: dict) -> Response | None:
    """REST_FRAMEWORK["EXCEPTION_HANDLER"]: every error of an API view as problem details."""
    from rest_framework.views import set_rollback  # not at import: DRF's views import our API classes

    error = application_error(exc)
    if error is None:
        return None
    set_rollback()
    request = context.get("request")
    if request is not None:
        # Problem details are JSON whatever renderer the view negotiated (or failed to: a 406 of
        # the schema view would otherwise come out as YAML, of the docs page as HTML).
        request.accepted_renderer, request.accepted_media_type = JSONRenderer(), PROBLEM_CONTENT_TYPE
    return Response(
        error.as_problem(), status=error.status, headers=problem_headers(exc, error), content_type=PROBLEM_CONTENT_TYPE
    )


# ---------------------------------------------------------------------------------------------
# Django's own error views (config.urls handler400/403/404/500): problem details under /api/,
# Django's default pages (the admin's HTML) elsewhere.


def is_api(request) -> bool:
    """Under /api/, however the caller spelt it: `//api/v1/`, `/API/V1/` are API mistakes too."""
    return _API_PREFIX.match(request.path) is not None


_API_PREFIX = re.compile(r"/+api(?:/|$)", re.IGNORECASE)


def _suggestion(path: str) -> str | None:
    """The API path the caller most likely meant (slashes collapsed, lower case, a trailing
    slash), when one answers there; None otherwise."""
    candidate = re.sub(r"/{2,}", "/", path).lower()
    if not candidate.endswith("/"):
        candidate += "/"
    if candidate == path:
        return None
    try:
        match = resolve(candidate)
    except Resolver404:
        return None
    return None if match.func is page_not_found_view else candidate


def problem_response(error: errors.ApplicationError) -> HttpResponse:
    return HttpResponse(
        json.dumps(error.as_problem(), ensure_ascii=True), status=error.status, content_type=PROBLEM_CONTENT_TYPE
    )


def bad_request(request, exception, template_name="400.html"):
    if not is_api(request):
        return defaults.bad_request(request, exception, template_name)
    return problem_response(application_error(exception) or errors.InvalidInput("The request is malformed.", errors={}))


def permission_denied(request, exception, template_name="403.html"):
    if not is_api(request):
        return defaults.permission_denied(request, exception, template_name)
    return problem_response(errors.PermissionDenied(str(exception) or "You may not do this."))


def page_not_found(request, exception, template_name="404.html"):
    if not is_api(request):
        return defaults.page_not_found(request, exception, template_name)
    suggestion = _suggestion(request.path)
    hint = f"; did you mean {suggestion}?" if suggestion else "."
    return problem_response(errors.NotFound(f"Nothing at {request.path}{hint}"))


@csrf_exempt  # it changes nothing; without this a POST with a session cookie would get CSRF's HTML 403
def page_not_found_view(request):
    """The catch-all of /api/ (any casing, doubled slashes): `not_found` as problem details
    whatever DEBUG says, naming the path meant when it differs only by such a slip."""
    return page_not_found(request, None)


def server_error(request, template_name="500.html"):
    if not is_api(request):
        return defaults.server_error(request, template_name)
    error = HttpProblem("The server failed; the error was logged.", code="server_error", status=500, title="Error")
    return problem_response(error)
