"""Structured logs: a request id on every line, and JSON lines when LOG_FORMAT=json.

Services log with `extra={"event": ..., "node": ..., ...}`; the plain format shows the message
(characters that do not print escaped: a node named with a newline cannot forge a log line),
the JSON format every field, so a log pipeline can index them without parsing prose."""

import contextvars
import json
import logging
import time
import uuid

from config.text import escape_unprintable

request_id = contextvars.ContextVar("request_id", default=None)

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields) -> None:
    """One structured line: `event key=value ...` in plain logs, every field apart in JSON logs."""
    text = " ".join(f"{key}={value}" for key, value in fields.items())
    logger.log(level, "%s %s", event, text, extra={"event": event, **fields})


class RequestIdFilter(logging.Filter):
    """Puts the current request's id (or '-' outside a request) on every record. Django's own
    lines of 4xx/5xx answers (django.request) are written after the middleware returned, so
    they take it from the request they carry (RequestIdMiddleware marks it)."""

    def filter(self, record):
        record.request_id = request_id.get() or getattr(getattr(record, "request", None), "nf_request_id", None) or "-"
        return True


class QuietAgentPolls(logging.Filter):
    """Drops runserver's access line of each successful agent poll: `make run`'s simulated agents
    poll every 2 s per host, which would bury the lines that matter (their acks and results, the
    admin's requests, errors). Only the development server's `django.server` logger uses it."""

    POLL = "GET /api/v1/agent/commands/ "

    def filter(self, record):
        line = record.args[0] if isinstance(record.args, tuple) and record.args else ""
        return not (getattr(record, "status_code", None) == 200 and str(line).startswith(self.POLL))


class PlainFormatter(logging.Formatter):
    """One line per record: the message's control characters escaped (a traceback, formatted
    apart, keeps its own lines)."""

    def formatMessage(self, record):
        record.message = escape_unprintable(record.message)
        return super().formatMessage(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, whatever the server's timezone), level, logger, message,
    request id and every `extra` field."""

    converter = time.gmtime  # formatTime's: the time is stamped with a Z, so it must be UTC

    def format(self, record):
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({key: value for key, value in vars(record).items() if key not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class RequestIdMiddleware:
    """Takes the caller's X-Request-ID (if it looks sane) or makes one; echoes it in the response."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        given = request.META.get("HTTP_X_REQUEST_ID", "")  # not request.headers: that copies every header
        value = given if 0 < len(given) <= 64 and given.isprintable() else uuid.uuid4().hex
        request.nf_request_id = value  # for log lines written after this returns (RequestIdFilter)
        token = request_id.set(value)
        try:
            response = self.get_response(request)
        finally:
            request_id.reset(token)
        response["X-Request-ID"] = value
        return response
