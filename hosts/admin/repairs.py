"""How a counter audit or repair reads in the admin: rows per host with each counter old → new in
human units, a repair's one-line summary and its message level (the hosts admin and the fleet
audit page both show them)."""

from django.contrib import messages

from config.units import human_amount
from hosts.admin.helpers import counter_label


def counter_amount(counter: str, value: int) -> str:
    return str(value) if counter == "node_count" else human_amount(counter.removeprefix("node_"), value)


def change_rows(changes) -> list[dict]:
    """(host_id, host_name, counter, old, new) tuples grouped by host, amounts in human units."""
    rows = {}
    for host_id, host_name, counter, old, new in changes:
        row = rows.setdefault(host_id, {"host_id": host_id, "host_name": host_name, "counters": []})
        row["counters"].append(
            {"label": counter_label(counter), "old": counter_amount(counter, old), "new": counter_amount(counter, new)}
        )
    return list(rows.values())


def report_rows(report) -> list[dict]:
    return change_rows(
        (change.host_id, change.host_name, counter, change.old[counter], change.new[counter])
        for change in report.changes
        for counter in change.fields
    )


def repair_summary(report) -> str:
    """One line for a repair: what changed, host by host, old → new; and the hosts it could not repair."""
    refused = "".join(f" Not repaired: {refusal.host_name}: {refusal.error.detail}" for refusal in report.refused)
    if not report.changes:
        if refused:
            return f"Nothing repaired.{refused}"
        return f"Nothing to repair: the counters of the {report.hosts_checked} host(s) agree with their nodes."
    details = "; ".join(
        "{} ({})".format(row["host_name"], ", ".join(f"{c['label']} {c['old']} → {c['new']}" for c in row["counters"]))
        for row in report_rows(report)
    )
    return f"Repaired {len(report.changes)} host(s): {details}.{refused}"


def repair_level(report) -> int:
    """The message level of a repair: success, warning when some hosts were refused, error when all were."""
    if not report.refused:
        return messages.SUCCESS
    return messages.WARNING if report.changes else messages.ERROR
