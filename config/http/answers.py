"""The hot answers' JSON, without DRF's renderer: plain dicts (built by one function per shape,
next to the serializers that document them) dumped with orjson (issue 22, docs/performance.md).

orjson writes UUIDs, timezone-aware datetimes (UTC as `Z`, as DRF does) and str enums natively,
in UTF-8. DRF's renderer escapes non-ASCII text instead (UNICODE_JSON = False) so that text it
echoes back can never fail to encode; the hot answers hold only text read from PostgreSQL or
validated on the way in (no lone surrogates), and both spellings are the same JSON."""

import orjson
from django.http import HttpResponse

from config.http.exceptions import application_error, problem_headers, problem_response

_OPTIONS = orjson.OPT_UTC_Z


def json_answer(data, *, status: int = 200, headers: dict[str, str] | None = None) -> HttpResponse:
    """`application/json`, as DRF's JSONRenderer labels it."""
    body = orjson.dumps(data, option=_OPTIONS)
    return HttpResponse(body, status=status, content_type="application/json", headers=headers)


def problem_answer(exc: Exception, *, headers: dict[str, str] | None = None) -> HttpResponse | None:
    """The problem details an exception answers as (as config.http.exceptions renders them for
    DRF's views), for a view outside DRF; None for an unexpected exception (a bug: let it raise)."""
    error = application_error(exc)
    if error is None:
        return None
    answer = problem_response(error)  # ASCII-escaped, as every problem: details may echo input
    for name, value in {**problem_headers(exc, error), **(headers or {})}.items():
        answer[name] = value
    return answer
