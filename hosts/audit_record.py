"""Recording an audit's summary (hosts.AuditRun) and publishing the last one as metrics: the audit
gauges are this room's, set by publish_last_audit, the collector hosts registers for /metrics."""

from collections.abc import Iterable

from django.db import connection
from prometheus_client import Gauge

from hosts.models import COUNTER_FIELDS, DRIFTED_HOST_IDS_MAX, AuditRun, Source

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


def audit_run_record(
    *, host_findings: Iterable, hosts_checked: int, nodes_checked: int, node_findings: int, source: str = Source.CLI
) -> AuditRun:
    """Sums the host findings (anything with .host_id, .field, .recorded, .expected) per counter and
    saves them with the ids of the first DRIFTED_HOST_IDS_MAX drifted hosts (the fleet page's marks)."""
    drift = {counter: {"hosts": 0, "amount": 0} for counter in COUNTER_FIELDS}
    drifted: dict[str, None] = {}
    for finding in host_findings:
        drift[finding.field]["hosts"] += 1
        drift[finding.field]["amount"] += abs(finding.recorded - finding.expected)
        if len(drifted) < DRIFTED_HOST_IDS_MAX:
            drifted[str(finding.host_id)] = None
    return AuditRun.objects.create(
        drifted_host_ids=list(drifted),
        hosts_checked=hosts_checked,
        nodes_checked=nodes_checked,
        drift=drift,
        node_findings=node_findings,
        source=source,
    )


def database_is_read_only() -> bool:
    """Whether this connection may not write: a hot standby (replica), or a session or role
    with `default_transaction_read_only`. Only PostgreSQL can be one here."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SHOW transaction_read_only")
        return cursor.fetchone()[0] == "on"


def publish_last_audit() -> AuditRun | None:
    """Sets the audit gauges from the newest AuditRun (none yet: the gauges stay unset)."""
    last = AuditRun.objects.first()
    if last is None:
        return None
    for counter in COUNTER_FIELDS:
        entry = last.drift.get(counter, {"hosts": 0, "amount": 0})
        AUDIT_DRIFT_HOSTS.labels(counter=counter).set(entry["hosts"])
        AUDIT_DRIFT_AMOUNT.labels(counter=counter).set(entry["amount"])
    AUDIT_NODE_FINDINGS.set(last.node_findings)
    AUDIT_LAST_RUN.set(last.created_at.timestamp())
    return last
