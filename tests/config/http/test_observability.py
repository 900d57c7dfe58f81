"""Metrics at /metrics and structured logs: what operators scrape and index."""

import io
import json
import logging
import logging.config
from types import SimpleNamespace

import pytest
from prometheus_client import REGISTRY
from rest_framework.test import APIClient

from config.errors import AlreadyOnImage
from config.http.logging import JsonFormatter, RequestIdFilter
from hosts.audit_record import audit_run_record
from nodes.changes import node_upgrade
from tests.factories import HostFactory, ImageFactory, UserFactory, place_node
from tokens.services import token_create

pytestmark = pytest.mark.django_db

TOKEN = "s3cret-token"


@pytest.fixture(autouse=True)
def metrics_token(settings):
    settings.METRICS_TOKEN = TOKEN


def scrape(client) -> str:
    answer = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert answer.status_code == 200
    return answer.content.decode()


def sample(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0


def test_upgrades_are_counted_by_outcome_and_timed(client):
    node = place_node(host=HostFactory(), image=(old := ImageFactory()))
    new = ImageFactory()
    ok, refused, timed = (
        sample("nodefleet_upgrades_total", outcome="ok"),
        sample("nodefleet_upgrades_total", outcome="already_on_image"),
        sample("nodefleet_upgrade_duration_seconds_count"),
    )
    locks = sample("nodefleet_lock_wait_seconds_count")

    node_upgrade(node_id=node.pk, image_id=new.pk)
    with pytest.raises(AlreadyOnImage):
        node_upgrade(node_id=node.pk, image_id=new.pk)

    assert sample("nodefleet_upgrades_total", outcome="ok") == ok + 1
    assert sample("nodefleet_upgrades_total", outcome="already_on_image") == refused + 1
    assert sample("nodefleet_upgrade_duration_seconds_count") == timed + 2
    assert sample("nodefleet_lock_wait_seconds_count") >= locks + 2
    body = scrape(client)
    assert 'nodefleet_upgrades_total{outcome="ok"}' in body
    assert old  # the node's first image stays in the fleet


def test_metrics_show_the_last_audits_drift():
    host = HostFactory()
    finding = SimpleNamespace(host_id=host.pk, field="node_cpu_cores", recorded=9, expected=4)
    run = audit_run_record(host_findings=[finding], hosts_checked=10, nodes_checked=40, node_findings=2)
    assert run.drifted_host_ids == [str(host.pk)]  # the fleet page's marks (§12)

    body = scrape(APIClient())

    assert 'nodefleet_audit_drift_hosts{counter="node_cpu_cores"} 1.0' in body
    assert 'nodefleet_audit_drift_amount{counter="node_cpu_cores"} 5.0' in body
    assert 'nodefleet_audit_drift_hosts{counter="node_count"} 0.0' in body
    assert "nodefleet_audit_node_findings 2.0" in body


def test_an_audit_run_keeps_each_drifted_host_once_and_at_most_1000():
    findings = [
        SimpleNamespace(host_id=f"00000000-0000-0000-0000-{n // 2:012d}", field=field, recorded=1, expected=0)
        for n, field in zip(range(2400), ["node_count", "node_cpu_cores"] * 1200, strict=True)
    ]

    run = audit_run_record(host_findings=findings, hosts_checked=1200, nodes_checked=0, node_findings=0)

    assert len(run.drifted_host_ids) == 1000 == len(set(run.drifted_host_ids))
    assert run.drifted_host_ids[0] == "00000000-0000-0000-0000-000000000000"
    assert run.drift["node_count"]["hosts"] == 1200 and run.host_findings == 2400


def test_metrics_show_the_fleets_capacity_per_region_from_host_rows():
    eu = HostFactory(region="eu-1", cpu_cores=64, reserved_cpu_cores=4, cpu_allocation_ratio="1.5")
    HostFactory(region="eu-1", cpu_cores=16)
    HostFactory(region="", cpu_cores=8)
    place_node(host=eu, image=ImageFactory(min_cpu_cores=3))

    body = scrape(APIClient())

    assert 'nodefleet_capacity{kind="physical",region="eu-1",resource="cpu_cores"} 80.0' in body
    assert 'nodefleet_capacity{kind="allocatable",region="eu-1",resource="cpu_cores"} 106.0' in body  # 90 + 16
    assert 'nodefleet_capacity{kind="used",region="eu-1",resource="cpu_cores"} 3.0' in body
    assert 'nodefleet_capacity{kind="physical",region="",resource="cpu_cores"} 8.0' in body
    HostFactory(region="us-1", cpu_cores=2)
    assert 'nodefleet_capacity{kind="physical",region="us-1",resource="cpu_cores"} 2.0' in scrape(APIClient())


def test_metrics_without_a_token_are_closed_in_production_even_to_loopback(client, settings):
    settings.METRICS_TOKEN, settings.DEBUG = "", False

    answer = client.get("/metrics")  # the test client's address is loopback

    assert answer.status_code == 403
    assert answer["Content-Type"] == "text/plain; charset=utf-8"
    assert "METRICS_TOKEN" in answer.content.decode()


def test_metrics_without_a_token_under_debug_answer_loopback_that_no_proxy_forwarded(client, settings):
    settings.METRICS_TOKEN, settings.DEBUG = "", True

    assert client.get("/metrics").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 403
    # A reverse proxy on the same machine reaches gunicorn from loopback for every client.
    for header in ("HTTP_X_FORWARDED_FOR", "HTTP_X_REAL_IP", "HTTP_FORWARDED", "HTTP_X_FORWARDED_PROTO"):
        assert client.get("/metrics", **{header: "203.0.113.9"}).status_code == 403, header


def test_metrics_answer_other_methods_with_a_plain_text_405():
    from django.test import Client

    answer = Client(enforce_csrf_checks=True).post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert answer.status_code == 405
    assert answer["Allow"] == "GET, HEAD"
    assert answer["Content-Type"] == "text/plain; charset=utf-8"
    assert answer.content.decode().startswith("/metrics answers GET and HEAD")


def test_metrics_are_not_redirected_to_https(client, settings):
    settings.SECURE_SSL_REDIRECT = True

    scrape(client)  # 200, not 301
    assert client.get("/admin/login/").status_code == 301  # the redirect itself is on


def test_metrics_serve_the_process_metrics_while_the_database_is_down(client, monkeypatch):
    from django.db import OperationalError

    from hosts import audit_record

    def database_down(*args, **kwargs):
        raise OperationalError('connection to server at "127.0.0.1", port 5432 failed: Connection refused')

    monkeypatch.setattr(audit_record.AuditRun.objects, "first", database_down)

    assert "nodefleet_upgrade_duration_seconds" in scrape(client)


def test_metrics_with_a_token_need_it_from_everywhere(client, settings):
    settings.DEBUG = True
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    answer = client.get("/metrics", REMOTE_ADDR="10.1.2.3", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("text/plain")


@pytest.fixture
def json_log():
    """Captures nodes.services' records as JSON lines, as LOG_FORMAT=json writes them."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("nodes.services")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logger.removeHandler(handler)


@pytest.mark.django_db(transaction=True)  # the upgrade's log line is written after the commit
def test_an_upgrade_through_the_api_logs_one_json_line_with_its_request_id(json_log):
    node = place_node(host=HostFactory(name="host-j"), image=ImageFactory(protocol="ethereum", version="1"))
    target = ImageFactory(protocol="ethereum", version="2", min_cpu_cores=5)
    user = UserFactory(username="ops", permissions=["nodes.upgrade_node"])
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token_create(user=user)[1]}")

    answer = api.post(
        f"/api/v1/nodes/{node.pk}/upgrade/", {"image_id": str(target.pk)}, format="json", HTTP_X_REQUEST_ID="req-42"
    )

    assert answer.status_code == 200
    assert answer["X-Request-ID"] == "req-42"
    [line] = [entry for entry in json_log() if entry.get("event") == "node_upgraded"]
    assert line["request_id"] == "req-42"
    assert (line["node"], line["host"], line["from_image"], line["to_image"]) == (
        node.name,
        "host-j",
        "ethereum@1",
        "ethereum@2",
    )
    assert line["delta"]["cpu_cores"] == 3
    assert (line["actor"], line["source"], line["level"]) == ("ops", "api", "INFO")


def test_a_refusal_logs_its_code(json_log):
    node = place_node(host=HostFactory(), image=(image := ImageFactory()))
    with pytest.raises(AlreadyOnImage):
        node_upgrade(node_id=node.pk, image_id=image.pk, source="cli")
    [line] = [entry for entry in json_log() if entry.get("event") == "upgrade_refused"]
    assert (line["code"], line["source"], line["request_id"]) == ("already_on_image", "cli", "-")


def test_the_plain_log_format_escapes_control_characters_of_a_message():
    from django.conf import settings as django_settings

    formatter = logging.config.dictConfigClass({"version": 1}).configure_formatter(
        django_settings.LOGGING["formatters"]["plain"]
    )
    record = logging.makeLogRecord(
        {
            "name": "nodes.services",
            "levelno": logging.INFO,
            "levelname": "INFO",
            "request_id": "-",
            "msg": "node_created node=%s",
            "args": ("eth-1\n2026-01-01 INFO forged\x1b[2K",),
        }
    )

    line = formatter.format(record)

    assert "\n" not in line and "\x1b" not in line
    assert line.endswith("node_created node=eth-1\\n2026-01-01 INFO forged\\x1b[2K")
