"""How the outside writes of §13 show in the audit's output (under each drift finding) and in
manage.py outside_writes: the lines of hosts.outside, escaped like every stored text printed."""

from hosts.outside import Attribution, Write, more_text, unknown_text, write_text
from nodes.management.audit_cli import terminal_safe


def attribution_lines(finding, attribution: Attribution | None, *, prefix: str = "") -> list[str]:
    """The lines printed under a drift finding (or a repair's change): each outside write that
    explains it, after `prefix`, or that its cause is unknown; none when nothing is recorded
    (the command says so once)."""
    if attribution is None:
        return []
    if not attribution.writes:
        return [terminal_safe(f"  {unknown_text(attribution.window)}")]
    lines = [f"  {prefix}{write_text(write)}" for write in attribution.writes]
    if more := more_text(attribution.window, finding.host_name):
        lines.append(f"  {more}")
    return [terminal_safe(line) for line in lines]


def repaired_over_lines(change, attribution: Attribution | None, *, dry_run: bool) -> list[str]:
    """Under a repair's change: the outside writes it repaired over (so an operator's log says what was undone)."""
    return attribution_lines(change, attribution, prefix="would repair over: " if dry_run else "repaired over: ")


def attribution_json(attribution: Attribution | None) -> dict:
    """`outside_writes` (null when nothing is recorded) and the window's start."""
    if attribution is None:
        return {"outside_writes": None}
    since = attribution.window.since
    return {
        "outside_writes": attribution.json(),
        "outside_writes_since": since.isoformat() if since else None,
    }


def write_line(write: Write) -> str:
    return terminal_safe(f"{write.table} {write.row_id}: {write_text(write)}")
