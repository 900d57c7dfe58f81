"""Prometheus metrics and the /metrics view.

Under gunicorn each worker is its own process: set PROMETHEUS_MULTIPROC_DIR (config/gunicorn.py
does) and the view aggregates every worker's samples. /metrics answers only to requests bearing
`Authorization: Bearer $METRICS_TOKEN` or, when no token is set, from the loopback address."""

import hmac
import os
import time
from contextlib import contextmanager

from django.conf import settings
from django.http import HttpResponse, HttpResponseForbidden
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
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
AUDIT_DRIFT_HOSTS = Gauge(
    "nodefleet_audit_drift_hosts",
    "Hosts whose counter disagreed with their nodes at the last audit.",
    ["counter"],
    multiprocess_mode="mostrecent",
)
AUDIT_DRIFT_AMOUNT = Gauge(
    "nodefleet_audit_drift_amount",
    "Sum over hosts of |recorded - expected| per counter at the last audit.",
    ["counter"],
    multiprocess_mode="mostrecent",
)
AUDIT_NODE_FINDINGS = Gauge(
    "nodefleet_audit_node_findings",
    "Node allocations that disagreed with their config at the last audit.",
    multiprocess_mode="mostrecent",
)
AUDIT_LAST_RUN = Gauge(
    "nodefleet_audit_last_run_timestamp_seconds", "When the last audit ran (Unix time).", multiprocess_mode="mostrecent"
)


@contextmanager
def timed(histogram: Histogram):
    began = time.perf_counter()
    try:
        yield
    finally:
        histogram.observe(time.perf_counter() - began)


def _allowed(request) -> bool:
    token = settings.METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(given.encode(), token.encode())
    return request.META.get("REMOTE_ADDR") in {"127.0.0.1", "::1"}


def _registry():
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    from prometheus_client import REGISTRY

    return REGISTRY


@never_cache
@require_safe
def metrics_view(request):
    if not _allowed(request):
        return HttpResponseForbidden("metrics need the metrics token (or a request from loopback when none is set)\n")
    from hosts.audit_record import publish_last_audit

    publish_last_audit()
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
