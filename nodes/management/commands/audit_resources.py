"""manage.py audit_resources: every host's counters against its nodes, every node's allocation
against its config on its image; hosts over capacity and overdue agent commands as warnings.

Exit 0 when clean, 1 on findings (warnings alone don't count), 2 on a usage error
(an unknown --host included). Findings are also logged at WARNING (stderr). An audit of the whole
fleet records its summary (hosts.AuditRun), which /metrics reports as the last audit; on a
read-only database (a replica) it says so on stderr and records nothing, exit codes unchanged."""

import logging
from collections import Counter
from itertools import chain

from django.core.management.base import BaseCommand, CommandError

from hosts.audit import CapacityWarning, HostFinding, host_audit, host_count
from hosts.audit_record import audit_run_record, database_is_read_only
from hosts.models import Source
from hosts.outside import attributed, not_recorded_notice
from nodes.agent.overdue import overdue_warnings
from nodes.audit import NodeFinding, node_allocation_findings, node_count
from nodes.management.audit_cli import JsonDocument, add_host_option, finding_json, finding_line, host_scope
from nodes.management.outside_cli import attribution_json, attribution_lines

logger = logging.getLogger("nodes.audit")


class Command(BaseCommand):
    help = (
        "Checks every host's counters against the COUNT/SUM of its nodes and every node's allocation "
        "against its config on its image; reports hosts over capacity and overdue agent commands as warnings. "
        "Exit 0 clean, 1 findings, 2 usage error."
    )

    def add_arguments(self, parser):
        add_host_option(parser, "audit only this host (repeatable)")
        parser.add_argument("--json", action="store_true", dest="as_json", help="one JSON document on stdout")

    def handle(self, *args, hosts: list[str], as_json: bool, **options):
        host_ids = host_scope(hosts)
        counts = Counter(nodes=node_count(host_ids=host_ids))  # nodes checked, and "host" and "node" findings
        hosts_checked = host_count(host_ids=host_ids)
        warnings = []  # at most three per host: kept to be listed after the findings
        host_findings = []  # at most four per host: summed into the AuditRun /metrics reports

        def findings():
            # Each drift finding with the outside writes that explain it (§13), one query per batch.
            items = chain(host_audit(host_ids=host_ids), node_allocation_findings(host_ids=host_ids))
            for item, attribution in attributed(items, is_drift=_is_drift):
                logger.warning("%s", finding_line(item))
                if isinstance(item, CapacityWarning):
                    warnings.append(item)
                    continue
                if isinstance(item, HostFinding):
                    host_findings.append(item)
                counts["host" if isinstance(item, HostFinding) else "node"] += 1
                counts["unattributed"] += attribution is None
                yield item, attribution

        def overdue():
            # Streamed (an agent-less fleet may have many), after the bounded capacity warnings.
            for item in overdue_warnings(host_ids=host_ids):
                logger.warning("%s", finding_line(item))
                counts["overdue"] += 1
                yield item

        if as_json:
            with JsonDocument(self.stdout) as document:
                document.items("findings", (finding_json(item) | attribution_json(why) for item, why in findings()))
                document.items("warnings", map(finding_json, chain(warnings, overdue())))
                document.value("summary", _summary(hosts_checked, counts, warnings))
        else:
            for item, attribution in findings():
                self.stdout.write(finding_line(item))
                for line in attribution_lines(item, attribution):
                    self.stdout.write(line)
            for item in chain(warnings, overdue()):
                self.stdout.write(finding_line(item))
            self.stdout.write(_summary_line(_summary(hosts_checked, counts, warnings)))
        if counts["unattributed"]:  # said once, not per finding
            self.stderr.write(not_recorded_notice())
        if host_ids is None and database_is_read_only():  # a replica: the audit stands, unrecorded
            notice = (
                "warning: the database is read-only (a replica?): this audit's summary is not recorded; "
                "/metrics shows the last audit recorded on the primary."
            )
            logger.warning("%s", notice)
            self.stderr.write(notice)
        elif host_ids is None:  # the fleet's figures, not a few hosts', are the last audit of /metrics
            audit_run_record(
                host_findings=host_findings,
                hosts_checked=hosts_checked,
                nodes_checked=counts["nodes"],
                node_findings=counts["node"],
                source=Source.CLI,
            )
        if counts["host"] or counts["node"]:
            raise CommandError(f"{counts['host'] + counts['node']} finding(s)", returncode=1)


def _is_drift(item) -> bool:
    return isinstance(item, HostFinding | NodeFinding)


def _summary(hosts_checked: int, counts: Counter, warnings: list) -> dict:
    return {
        "hosts_checked": hosts_checked,
        "nodes_checked": counts["nodes"],
        "host_findings": counts["host"],
        "node_findings": counts["node"],
        "warnings": len(warnings) + counts["overdue"],
        "overdue_commands": counts["overdue"],
    }


def _summary_line(summary: dict) -> str:
    found = (
        f"{summary['host_findings']} host finding(s), {summary['node_findings']} node finding(s)"
        if summary["host_findings"] or summary["node_findings"]
        else "no findings"
    )
    over_capacity = summary["warnings"] - summary["overdue_commands"]
    if over_capacity:
        found += f", {over_capacity} over-capacity warning(s)"
    if summary["overdue_commands"]:
        found += f", {summary['overdue_commands']} overdue command(s)"
    return f"Checked {summary['hosts_checked']} host(s) and {summary['nodes_checked']} node(s): {found}."
