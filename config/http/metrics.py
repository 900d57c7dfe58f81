"""Prometheus metrics and the /metrics view.

Under gunicorn each worker is its own process: set PROMETHEUS_MULTIPROC_DIR (config/gunicorn.py
does) and the view aggregates every worker's samples.

/metrics answers only to requests bearing `Authorization: Bearer $METRICS_TOKEN`. Without a
token it is closed in production, so no proxy setup can expose it by accident; under DEBUG
(`make run`) it answers loopback requests that carry no forwarding header. The process metrics
are served even when the database is down (the audit gauges then keep their last values)."""

import hmac
import logging
import os
import time
from collections.abc import Callable
from contextlib import contextmanager

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

UPGRADES = Counter("nodefleet_upgrades", "Node upgrades by outcome (ok or the error code).", ["outcome"])
UPGRADE_SECONDS = Histogram(
    "nodefleet_upgrade_duration_seconds",
    "Time of one upgrade through the service, retries included.",
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
AGENT_RESULTS = Counter(
    "nodefleet_agent_results", "Outcomes host agents reported, by command kind and outcome.", ["kind", "outcome"]
)
LOCK_WAIT_SECONDS = Histogram(
    "nodefleet_lock_wait_seconds",
    "Time taken by the statements that lock node and host rows (waiting included).",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


@contextmanager
def timed(histogram: Histogram):
    began = time.perf_counter()
    try:
        yield
    finally:
        histogram.observe(time.perf_counter() - began)


logger = logging.getLogger("config.metrics")  # its name before config/http/

#: Headers a reverse proxy adds: their presence means the loopback peer is a proxy, not the caller.
FORWARDING_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-IP")


#: The rooms' collectors, called before each scrape to set their gauges from the database (the
#: gauges are theirs: hosts' last audit, nodes' overdue commands and offline hosts). Each app
#: registers its own in its AppConfig.ready(); config imports no app.
_collectors: list[Callable[[], object]] = []


def register_collector(collect: Callable[[], object]) -> None:
    """Registers a room's collector (once; called before every scrape, in registration order)."""
    if collect not in _collectors:
        _collectors.append(collect)


def _refusal(request) -> str | None:
    """Why the request may not read the metrics (None: it may)."""
    token = settings.METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if hmac.compare_digest(given.encode(), token.encode()):
            return None
        return "/metrics needs `Authorization: Bearer <METRICS_TOKEN>`."
    if not settings.DEBUG:
        return "/metrics is closed: set METRICS_TOKEN and scrape with `Authorization: Bearer <token>`."
    forwarded = any(header in request.headers for header in FORWARDING_HEADERS)
    if request.META.get("REMOTE_ADDR") in {"127.0.0.1", "::1"} and not forwarded:
        return None
    return "/metrics without METRICS_TOKEN answers only to loopback requests that no proxy forwarded."


def _registry():
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    from prometheus_client import REGISTRY

    return REGISTRY


def _text(status: int, text: str) -> HttpResponse:
    """An error of /metrics, in the text its scrapers read (not Django's HTML)."""
    return HttpResponse(text + "\n", status=status, content_type="text/plain; charset=utf-8")


@csrf_exempt  # no session or form here: a POST gets the 405 below, not CSRF's HTML 403
@never_cache
def metrics_view(request):
    if request.method not in ("GET", "HEAD"):
        response = _text(405, f"/metrics answers GET and HEAD, not {request.method}.")
        response["Allow"] = "GET, HEAD"
        return response
    refusal = _refusal(request)
    if refusal:
        return _text(403, refusal)
    try:
        for collect in _collectors:
            collect()
    except DatabaseError as error:  # the process metrics matter most in an outage: serve them
        logger.warning("metrics: the audit or agent gauges could not be read (%s); they keep their values", error)
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
