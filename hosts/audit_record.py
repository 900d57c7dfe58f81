"""Recording an audit's summary (hosts.AuditRun) and publishing the last one as metrics."""

from collections.abc import Iterable

from django.db import connection

from config.http.metrics import AUDIT_DRIFT_AMOUNT, AUDIT_DRIFT_HOSTS, AUDIT_LAST_RUN, AUDIT_NODE_FINDINGS
from hosts.models import COUNTER_FIELDS, AuditRun, Source


def audit_run_record(
    *, host_findings: Iterable, hosts_checked: int, nodes_checked: int, node_findings: int, source: str = Source.CLI
) -> AuditRun:
    """Sums the host findings (anything with .field, .recorded, .expected) per counter and saves them."""
    drift = {counter: {"hosts": 0, "amount": 0} for counter in COUNTER_FIELDS}
    for finding in host_findings:
        drift[finding.field]["hosts"] += 1
        drift[finding.field]["amount"] += abs(finding.recorded - finding.expected)
    return AuditRun.objects.create(
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
