"""manage.py repair_counters: set hosts' counters to the truth of their nodes (and, with
--fix-nodes, node allocations back to their config first), print and record every change
old -> new, then re-audit.

Exit 0 on success, changed or not (node findings left without --fix-nodes are reported, not an
error); with --dry-run, 1 when something would change; 1 when something could not be repaired
(or the re-audit still finds counter drift); 2 on a usage error (an unknown --host included)."""

import sys
from itertools import chain

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from tqdm import tqdm

from config.errors import ApplicationError
from hosts.audit import host_count, host_counter_findings
from hosts.models import Source
from hosts.outside import attributed, not_recorded_notice
from hosts.repair import host_counters_repair
from nodes.audit import node_allocation_findings
from nodes.management.audit_cli import (
    JsonDocument,
    add_host_option,
    allocation_change_json,
    allocation_change_line,
    counter_change_json,
    counter_change_line,
    finding_json,
    finding_line,
    host_refusal_json,
    host_refusal_line,
    host_scope,
    terminal_safe,
)
from nodes.management.outside_cli import attribution_json, repaired_over_lines
from nodes.repair import NodeRepairReport, node_allocations_repair


class Command(BaseCommand):
    help = (
        "Sets each host's counters to the COUNT/SUM of its nodes, in batches of hosts (each batch one "
        "transaction holding its hosts' locks), records every change and re-audits. "
        "Exit 0 done, 1 --dry-run found changes (or something could not be repaired), 2 usage error."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="show what would change; write nothing")
        add_host_option(parser, "repair only this host (repeatable)")
        parser.add_argument(
            "--batch-size", type=int, default=500, metavar="N", help="hosts per transaction (default 500)"
        )
        parser.add_argument(
            "--fix-nodes",
            action="store_true",
            help="first set node allocations that disagree with their config back to it",
        )
        parser.add_argument("--json", action="store_true", dest="as_json", help="one JSON document on stdout")

    def handle(
        self, *args, dry_run: bool, hosts: list[str], batch_size: int, fix_nodes: bool, as_json: bool, **options
    ):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.", returncode=2)
        host_ids = host_scope(hosts)
        started = timezone.now()  # the outside writes repaired over: those since each host's repair before this run
        try:
            nodes = NodeRepairReport(dry_run=dry_run)
            if fix_nodes:
                with tqdm(unit="node", desc="repairing nodes", disable=None, file=sys.stderr) as bar:
                    nodes = node_allocations_repair(
                        host_ids=host_ids, dry_run=dry_run, source=Source.CLI, progress=bar.update
                    )
            with tqdm(
                total=host_count(host_ids=host_ids),
                unit="host",
                desc="repairing hosts",
                disable=None,
                file=sys.stderr,
            ) as bar:
                hosts_report = host_counters_repair(
                    host_ids=host_ids, batch_size=batch_size, dry_run=dry_run, source=Source.CLI, progress=bar.update
                )
        except ApplicationError as error:
            raise CommandError(terminal_safe(error.detail), returncode=1) from None

        counter_changes = [*nodes.counter_changes, *hosts_report.changes]
        node_changes = list(attributed(nodes.changes, is_drift=bool, before=started))
        host_changes = list(attributed(counter_changes, is_drift=bool, before=started))
        if any(why is None for _change, why in chain(node_changes, host_changes)):
            self.stderr.write(not_recorded_notice())
        refused_hosts = hosts_report.refused
        # The re-check: counters against their nodes (after a real run: none left but the hosts
        # refused), and the node findings left (all of them without --fix-nodes; after a dry run,
        # what it would fix too).
        leftover_hosts = [] if dry_run else list(host_counter_findings(host_ids=host_ids))
        refused_ids = {refusal.host_id for refusal in refused_hosts}
        stray_hosts = [finding for finding in leftover_hosts if finding.host_id not in refused_ids]
        leftover = 0

        def leftovers():
            nonlocal leftover
            for finding in chain(leftover_hosts, node_allocation_findings(host_ids=host_ids)):
                leftover += 1
                yield finding

        changed = len(counter_changes) + len(nodes.changes)
        summary = {
            "dry_run": dry_run,
            "hosts_checked": hosts_report.hosts_checked,
            "hosts_changed": len({change.host_id for change in counter_changes}),
            "nodes_changed": len(nodes.changes),
            "nodes_refused": len(nodes.refused),
            "hosts_refused": len(refused_hosts),
        }
        if as_json:
            with JsonDocument(self.stdout) as document:
                nodes_json = (allocation_change_json(change) | attribution_json(why) for change, why in node_changes)
                document.items("node_changes", nodes_json)
                hosts_json = (counter_change_json(change) | attribution_json(why) for change, why in host_changes)
                document.items("host_changes", hosts_json)
                document.items("refused", ({"node": name, "detail": detail} for name, detail in nodes.refused))
                document.items("hosts_refused", map(host_refusal_json, refused_hosts))
                document.items("findings_after", map(finding_json, leftovers()))
                document.value("summary", {**summary, "findings_after": leftover})
        else:
            for change, why in node_changes:
                self.stdout.write(allocation_change_line(change, dry_run=dry_run))
                for line in repaired_over_lines(change, why, dry_run=dry_run):
                    self.stdout.write(line)
            for change, why in host_changes:
                self.stdout.write(counter_change_line(change, dry_run=dry_run))
                for line in repaired_over_lines(change, why, dry_run=dry_run):
                    self.stdout.write(line)
            for name, detail in nodes.refused:
                self.stdout.write(terminal_safe(f"node {name}: not repaired: {detail}"))
            for refusal in refused_hosts:
                self.stdout.write(host_refusal_line(refusal))
            self.stdout.write(_summary_line(summary, changed))
            self.stdout.write("Node findings:" if dry_run else "Re-audit:")
            for finding in leftovers():
                self.stdout.write(f"  {finding_line(finding)}")
            after = _after_line(
                leftover, dry_run=dry_run, fix_nodes=fix_nodes, hosts_left=len(stray_hosts), refused=len(refused_hosts)
            )
            self.stdout.write(f"  {after}")

        if dry_run and changed:
            raise CommandError(f"dry run: {changed} change(s) would be made", returncode=1)
        if nodes.refused or refused_hosts or leftover_hosts:
            raise CommandError("some counters or allocations could not be repaired", returncode=1)


def _summary_line(summary: dict, changed: int) -> str:
    checked = f"{summary['hosts_checked']} host(s) checked"
    refused = [
        f"{summary[key]} {what}(s) could not be repaired"
        for key, what in (("hosts_refused", "host"), ("nodes_refused", "node"))
        if summary[key]
    ]
    if not changed:
        if refused:
            return f"Nothing changed: {checked}; {', '.join(refused)}."
        return f"Nothing to change: {checked}, every counter equals its nodes."
    verb = "Would change" if summary["dry_run"] else "Repaired"
    text = f"{verb} {summary['hosts_changed']} host(s) and {summary['nodes_changed']} node(s); {checked}"
    if summary["dry_run"]:
        text += "; nothing was written"
    if refused:
        text += f"; {', '.join(refused)}"
    return text + "."


def _after_line(leftover: int, *, dry_run: bool, fix_nodes: bool, hosts_left: int, refused: int) -> str:
    if dry_run:  # nothing was written: the node findings as they are
        if not leftover:
            return "none."
        return f"{leftover} node finding(s)" + ("; --fix-nodes would repair them." if not fix_nodes else ".")
    if not leftover:
        return "clean."
    if refused and not hosts_left:
        return f"{leftover} finding(s) left, the counters of the host(s) that could not be repaired (above) among them."
    if hosts_left:
        return (
            f"{leftover} finding(s) left: counters changed around the application while the repair ran; run it again."
        )
    return f"{leftover} node finding(s) left" + ("." if fix_nodes else "; run with --fix-nodes to repair them.")
