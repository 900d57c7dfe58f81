"""Request bodies sent with `Transfer-Encoding: chunked` (no Content-Length), as httpx sends a
generator body and curl `-T -`. Django reads exactly CONTENT_LENGTH bytes — none, here — so such
a body would silently read as empty ("This field is required."). This middleware reads it, up
to DATA_UPLOAD_MAX_MEMORY_SIZE (413 beyond), where the server marks where the body ends (WSGI's
`wsgi.input_terminated`: gunicorn, which de-chunks it); elsewhere (runserver) it answers 411:
send a Content-Length."""

import io

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.handlers.wsgi import LimitedStream
from django.http import HttpResponse

from config.http.exceptions import HttpProblem, is_api, problem_response

_CHUNK = 64 * 1024


class ChunkedBodyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.META.get("HTTP_TRANSFER_ENCODING") and not request.META.get("CONTENT_LENGTH"):
            environ = getattr(request, "environ", {})
            if not environ.get("wsgi.input_terminated"):
                return _length_required(request)
            body = _read_to_end(environ["wsgi.input"], settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
            request.META["CONTENT_LENGTH"] = str(len(body))
            request._stream = LimitedStream(io.BytesIO(body), len(body))
        return self.get_response(request)


def _read_to_end(stream, limit: int | None) -> bytes:
    """The whole body, or RequestDataTooBig (Django's 413 under /api/) once it passes `limit`."""
    body = bytearray()
    while chunk := stream.read(_CHUNK):
        body += chunk
        if limit is not None and len(body) > limit:
            raise RequestDataTooBig(f"The request body is larger than {limit} bytes.")
    return bytes(body)


def _length_required(request) -> HttpResponse:
    detail = "This server cannot read a chunked request body here; send it with a Content-Length header."
    if not is_api(request):
        return HttpResponse(detail + "\n", status=411, content_type="text/plain; charset=utf-8")
    return problem_response(HttpProblem(detail, code="length_required", status=411, title="Length required"))
