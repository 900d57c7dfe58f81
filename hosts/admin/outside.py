"""The outside writes' admin (SPEC §13): the record, read-only for everyone (no add, change or
delete, superusers included: only the database's trigger writes it, only `manage.py
outside_writes --prune-before` deletes), filtered by host, table and database user, searched by
row id; and the lines the counter audit page and a drifted host's page show under each finding."""

from django.contrib import admin
from django.db.models import Q
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from hosts.admin.helpers import ReadOnlyAdmin, TextInputFilter, as_uuid
from hosts.models import Host, OutsideWrite
from hosts.outside import Write, attributed, changes_text, not_recorded_notice


class ConcernsHostFilter(TextInputFilter):
    """The writes that concern a host (typed: its id or name), a node moved between hosts
    concerning both."""

    title = "host (id or name)"
    parameter_name = "host"

    def queryset(self, request, queryset):
        value = (self.value() or "").strip()
        if not value:
            return queryset
        pk = as_uuid(value) or Host.objects.filter(name=value).values_list("pk", flat=True).first()
        if pk is None:
            return queryset.none()
        return queryset.filter(Q(host_id=pk) | Q(from_host_id=pk))


@admin.register(OutsideWrite)
class OutsideWriteAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "table",
        "operation",
        "row_id",
        "host",
        "changed",
        "session_user",
        "application_name",
        "client_addr",
        "transaction_id",
    ]
    list_filter = [ConcernsHostFilter, "table", "session_user"]
    search_fields = ["row_id"]
    search_help_text = "A row id (a host's or a node's), or part of one."
    sortable_by = ["created_at"]

    @admin.display(description="host")
    def host(self, record):
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:hosts_host_change", args=[record.host_id]), record.host_id
        )

    @admin.display(description="old → new")
    def changed(self, record):
        return changes_text(Write.of(record))


def outside_writes_url(host_id=None) -> str:
    url = reverse("admin:hosts_outsidewrite_changelist")
    return f"{url}?host={host_id}" if host_id else url


def cause_lines(findings: list) -> tuple[list[list[str] | None], str | None]:
    """For drift findings of hosts.audit / nodes.audit, in their order, the lines the audit
    prints under each (each outside write that explains it, or cause unknown), in one query;
    and the notice to show once when nothing is recorded (SQLite, triggers missing)."""
    lines, notice = [], None
    for _finding, attribution in attributed(findings, is_drift=lambda item: True):
        if attribution is None:
            notice = not_recorded_notice()
        lines.append(attribution.lines if attribution is not None else None)
    return lines, notice


def causes_html(lines: list[str], host_id) -> str:
    """The lines under a finding, then a link to the host's outside writes."""
    return format_html(
        '<div class="nf-causes">{}<a href="{}">outside writes of this host</a></div>',
        format_html_join("", "<div>{}</div>", ((line,) for line in lines)),
        outside_writes_url(host_id),
    )
