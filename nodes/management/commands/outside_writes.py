"""manage.py outside_writes: the writes to host counters and capacity and to node hosts and
allocations that connections other than Nodefleet's made (SPEC §13), oldest first; or, with
--prune-before, deletes those recorded before a time (the record's only delete).

Exit 0, 2 on a usage error (a time that does not parse, an unknown --host, --prune-before with
a filter)."""

from django.core.management.base import BaseCommand, CommandError

from config.errors import ApplicationError
from hosts.outside import (
    not_recorded_notice,
    outside_writes,
    outside_writes_prune,
    parse_time,
    recording,
    timestamp,
    write_json,
)
from nodes.management.audit_cli import JsonDocument, add_host_option, host_scope, terminal_safe
from nodes.management.outside_cli import write_line


class Command(BaseCommand):
    help = (
        "Lists the writes made to hosts' counters and capacity and to nodes' hosts and allocations by "
        "connections other than Nodefleet's, oldest first; --prune-before deletes the older ones. "
        "Exit 0, 2 usage error."
    )

    def add_arguments(self, parser):
        parser.add_argument("--since", metavar="TIME", help="only writes at or after TIME (ISO 8601)")
        add_host_option(parser, "only writes that concern this host (repeatable)")
        parser.add_argument("--json", action="store_true", dest="as_json", help="one JSON document on stdout")
        parser.add_argument("--prune-before", metavar="TIME", help="delete the writes recorded before TIME")

    def handle(self, *args, since: str | None, hosts: list[str], as_json: bool, prune_before: str | None, **options):
        try:
            since_time = parse_time(since, option="--since") if since is not None else None
            before = parse_time(prune_before, option="--prune-before") if prune_before is not None else None
        except ApplicationError as error:
            raise CommandError(terminal_safe(error.detail), returncode=2) from None
        if before is not None and (since is not None or hosts):
            raise CommandError("--prune-before takes no --since or --host: it prunes the whole record.", returncode=2)
        host_ids = host_scope(hosts)
        meta = recording()
        if meta is None:
            self.stderr.write(not_recorded_notice())
        if before is not None:
            pruned = outside_writes_prune(before=before)
            if as_json:
                with JsonDocument(self.stdout) as document:
                    document.value("pruned", pruned)
                    document.value("before", before.isoformat())
            else:
                self.stdout.write(f"Pruned {pruned} outside write(s) recorded before {timestamp(before)}.")
            return
        writes = outside_writes(since=since_time, host_ids=host_ids)
        if as_json:
            with JsonDocument(self.stdout) as document:
                document.value("recording_since", meta and meta["since"])
                document.items("outside_writes", map(write_json, writes))
            return
        count = 0
        for write in writes:
            self.stdout.write(write_line(write))
            count += 1
        began = f"; recording since {timestamp(parse_time(meta['since'], option='since'))}" if meta else ""
        self.stdout.write(f"{count} outside write(s){began}.")
