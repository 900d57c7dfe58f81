"""The hosts admin for support staff: capacity and usage at a glance, drifted counters flagged in
the list's one query, and the audit and repair of counters (hosts.audit, hosts.repair) behind
confirmation pages. Counters are read-only here: only the services write them."""

import datetime as dt

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db import transaction
from django.db.models import Count, ExpressionWrapper, F, FloatField, Q
from django.db.models.functions import Cast, NullIf
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.html import format_html
from django.utils.timesince import timesince

from config.formats import human_datetime
from config.units import RESOURCES, human_cores
from hosts.admin.actions import HostWrites
from hosts.admin.capacity import (
    HostForm,
    RegionFilter,
    SchedulingFilter,
    allocatable_text,
    exact_bytes,
    slots_text,
    usage,
    where_text,
)
from hosts.admin.helpers import LargeTableAdmin, PagedChangeList, PageFirstPaginator, ReadOnlyAdmin, counter_label
from hosts.admin.last_audit import LastAuditFilter
from hosts.admin.outside import cause_lines, causes_html
from hosts.admin.repairs import change_rows, counter_amount, repair_level, repair_summary, report_rows
from hosts.agent_tokens import agent_token_issue
from hosts.audit import EXPECTED, HostFinding, host_counter_findings, hosts_with_expected
from hosts.capacity import ALLOCATABLE, RATIO, RESERVED, over_allocated_q
from hosts.models import COUNTER_FIELDS, COUNTER_OF_RESOURCE, CounterRepair, Host, Source
from hosts.presence import NO_AGENT, OFFLINE, agent_presence, offline_condition
from hosts.repair import host_counters_repair

#: The most hosts one audit or repair from the list takes (each is one hidden field on its page).
MAX_HOSTS = 500
#: The most hosts one "Issue agent token" takes (their tokens are shown on one page).
MAX_TOKEN_HOSTS = 100


class DriftFilter(admin.SimpleListFilter):
    # Said on the page: either choice runs the fleet-wide audit query (one pass over every node,
    # about half a second at 1,000,000 nodes; docs/performance.md), unlike the other filters.
    title = "counters (runs the fleet-wide audit)"
    parameter_name = "drift"

    def lookups(self, request, model_admin):
        return [("yes", "drifted"), ("no", "agree with nodes")]

    def queryset(self, request, queryset):
        if self.value() not in ("yes", "no"):
            return queryset
        # One grouped pass over the nodes (the audit's), rather than the per-row subqueries of
        # the list evaluated for every host, once to count and once to page.
        drifted = {finding.host_id for finding in host_counter_findings()}
        return queryset.filter(pk__in=drifted) if self.value() == "yes" else queryset.exclude(pk__in=drifted)


def _over_capacity() -> Q:
    """Over allocatable or past max_nodes (hosts.capacity, the audit's rule)."""
    return over_allocated_q()


class OverCapacityFilter(admin.SimpleListFilter):
    title = "capacity"
    parameter_name = "over_capacity"

    def lookups(self, request, model_admin):
        return [("yes", "over capacity"), ("no", "within capacity")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(_over_capacity())
        if self.value() == "no":
            return queryset.exclude(_over_capacity())
        return queryset


class AgentFilter(admin.SimpleListFilter):
    title = "agent"
    parameter_name = "agent"

    def lookups(self, request, model_admin):
        return [("offline", "offline"), ("none", "no agent token")]

    def queryset(self, request, queryset):
        if self.value() == "offline":
            return queryset.filter(offline_condition())
        if self.value() == "none":
            return queryset.filter(agent_token_digest__isnull=True)
        return queryset


def utilisation(resource: str):
    """How full a host is of one resource, used / allocatable (§11; NULL without allocatable:
    sorts last): the usage columns sort by it, as the bars are drawn against allocatable."""
    used = Cast(F(COUNTER_OF_RESOURCE[resource]), FloatField())
    return ExpressionWrapper(used / NullIf(F(ALLOCATABLE[resource]), 0), output_field=FloatField())


def seen_text(moment) -> str:
    """`seen just now` (under a minute), `seen 3 minutes ago`, `never seen`."""
    if moment is None:
        return "never seen"
    if timezone.now() - moment < dt.timedelta(minutes=1):
        return "seen just now"
    return f"seen {timesince(moment, depth=1)} ago"


def agent_badge(host: Host):
    """`seen 2 minutes ago`, or an `offline` badge past AGENT_OFFLINE_AFTER (from the row alone)."""
    presence = agent_presence(host)
    if presence == NO_AGENT:
        return format_html('<span class="nf-muted nf-nowrap" title="{}">no token</span>', "No agent token issued")
    seen, when = seen_text(host.agent_seen_at), human_datetime(host.agent_seen_at)
    if presence == OFFLINE:
        return format_html(
            '<span class="nf-nowrap" title="{}">'
            '<span class="nf-badge nf-state nf-state-offline">offline</span> {}</span>',
            when,
            seen,
        )
    return format_html('<span class="nf-nowrap" title="{}">{}</span>', when, seen)


def _drift_details(host: Host) -> str:
    """`nodes 8, nodes say 9; memory 16.0 GiB, nodes say 24.0 GiB`, from the list's annotations."""
    return "; ".join(
        f"{counter_label(counter)} {counter_amount(counter, getattr(host, counter))}, "
        f"nodes say {counter_amount(counter, getattr(host, EXPECTED[counter]))}"
        for counter in COUNTER_FIELDS
        if getattr(host, counter) != getattr(host, EXPECTED[counter])
    )


def _drift_causes(host: Host) -> str:
    """Under a drifted host's counters, what the audit says of each one's cause (§13): the
    outside writes that explain it, or cause unknown; a link to the host's outside writes."""
    findings = [
        HostFinding(host.pk, host.name, counter, getattr(host, counter), getattr(host, EXPECTED[counter]))
        for counter in COUNTER_FIELDS
        if getattr(host, counter) != getattr(host, EXPECTED[counter])
    ]
    lines, notice = cause_lines(findings)
    if notice:
        return format_html('<div class="nf-causes nf-muted">{}</div>', notice)
    labelled = zip((counter_label(finding.field) for finding in findings), lines, strict=True)
    return causes_html([f"{label}: {line}" for label, found in labelled for line in found], host.pk)


@admin.register(Host)
class HostAdmin(HostWrites, LargeTableAdmin):
    paginator = PageFirstPaginator

    class Media:
        css = {"all": ["hosts/placement.css"]}

    def get_changelist(self, request, **kwargs):
        return PagedChangeList

    list_display = ["host", "nodes", "cpu", "memory", "disk", "agent"]
    list_filter = [DriftFilter, OverCapacityFilter, AgentFilter, RegionFilter, SchedulingFilter, LastAuditFilter]
    search_fields = ["name"]
    id_search_field = "pk"
    search_help_text = "Host name (or part of it), or a host id."
    actions = ["audit_counters", "repair_counters", "issue_agent_token", "drain", "set_automatic", "set_manual"]
    form = HostForm
    fieldsets = [
        (None, {"fields": ["name", "region", "scheduling"]}),
        ("Capacity", {"fields": ["cpu_cores", "memory_bytes", "disk_bytes"]}),
        (
            "Reserve, overcommit and node slots (allocatable = (capacity - reserved) x ratio)",
            {"fields": [*RESERVED.values(), *RATIO.values(), "max_nodes"]},
        ),
        ("Allocatable (what nodes may take; computed)", {"fields": ["allocatable"]}),
        (
            "Allocated to its nodes (counters: read-only, only node operations and repairs change them)",
            {"fields": ["usage", "nodes", "counter_cpu", "counter_memory", "counter_disk", "counter_check"]},
        ),
        ("Agent", {"fields": ["agent", "agent_token_created_at"]}),
    ]
    readonly_fields = [
        "allocatable",
        "usage",
        "nodes",
        "counter_cpu",
        "counter_memory",
        "counter_disk",
        "counter_check",
        "agent",
        "agent_token_created_at",
    ]

    def get_fieldsets(self, request, obj=None):
        # A host being added has no nodes: its counters start at zero, nothing to show yet.
        return self.fieldsets if obj is not None else self.fieldsets[:3]

    def get_queryset(self, request):
        # The expected counters and `has_drift` are correlated subqueries of the list's one
        # query: computed for the rows of the page only (and for all rows when filtering on drift).
        return hosts_with_expected(super().get_queryset(request))

    # Columns and fields -----------------------------------------------------------------------

    @admin.display(description="host", ordering="name")
    def host(self, host):
        # Region and scheduling go under the name (§11): no column of their own, so the list
        # keeps to a support person's 1,280 px (tests/admin/test_layout.py).
        if not host.has_drift:
            return format_html("{}{}", host.name, where_text(host))
        return format_html(
            '{} <span class="nf-badge nf-badge-drift" title="Counters disagree with the nodes: {}">drift</span>{}',
            host.name,
            _drift_details(host),
            where_text(host),
        )

    @admin.display(description="nodes", ordering="node_count")
    def nodes(self, host):
        url = reverse("admin:nodes_node_changelist") + f"?host={host.pk}"
        title = f"The nodes of {host.name}" + ("" if host.max_nodes is None else f" (of {host.max_nodes} slots)")
        return format_html('<a href="{}" title="{}">{}</a>', url, title, slots_text(host))

    @admin.display(description="CPU used / allocatable", ordering=utilisation("cpu_cores"))
    def cpu(self, host):
        return usage(host, "cpu_cores")

    @admin.display(description="memory used / allocatable", ordering=utilisation("memory_bytes"))
    def memory(self, host):
        return usage(host, "memory_bytes")

    @admin.display(description="disk used / allocatable", ordering=utilisation("disk_bytes"))
    def disk(self, host):
        return usage(host, "disk_bytes")

    @admin.display(description="allocatable")
    def allocatable(self, host):
        return allocatable_text(host)

    @admin.display(description="agent", ordering="agent_seen_at")
    def agent(self, host):
        if host.pk is None:
            return "—"
        return agent_badge(host)

    @admin.display(description="usage")
    def usage(self, host):
        return format_html("{}{}{}", *(usage(host, resource) for resource in RESOURCES))

    @admin.display(description="node CPU cores")
    def counter_cpu(self, host):
        return human_cores(host.node_cpu_cores)

    @admin.display(description="node memory")
    def counter_memory(self, host):
        return exact_bytes(host.node_memory_bytes)

    @admin.display(description="node disk")
    def counter_disk(self, host):
        return exact_bytes(host.node_disk_bytes)

    @admin.display(description="check against its nodes")
    def counter_check(self, host):
        if not host.has_drift:
            return "The counters agree with the host's nodes."
        return format_html(
            '<span class="nf-badge nf-badge-drift">drift</span> {}. "Repair counters…" (above) sets them to '
            "what the nodes say.{}",
            _drift_details(host),
            _drift_causes(host),
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "may_repair": self.has_repair_counters_permission(request)}
        return super().change_view(request, object_id, form_url, extra_context)

    def delete_queryset(self, request, queryset):
        """One Host.delete() each (it locks the host and counts its nodes first), in pk order."""
        with transaction.atomic():
            for host in queryset.order_by("pk"):
                host.delete()

    def get_deleted_objects(self, objs, request):
        """Refuses hosts that still hold nodes up front, rather than listing every node."""
        holding = Host.objects.filter(pk__in=[host.pk for host in objs]).annotate(count=Count("nodes"))
        protected = [f"{host}: holds {host.count} node(s); delete them first" for host in holding if host.count]
        if protected:
            return [], {}, set(), protected
        return super().get_deleted_objects(objs, request)

    # Actions ----------------------------------------------------------------------------------

    def has_repair_counters_permission(self, request):
        return request.user.has_perm("hosts.repair_counters")

    def _selection(self, request, queryset) -> list | None:
        host_ids = list(queryset.order_by().values_list("pk", flat=True)[: MAX_HOSTS + 1])
        if len(host_ids) > MAX_HOSTS:
            self.message_user(
                request,
                f"Select at most {MAX_HOSTS} hosts (filter the list, or audit the whole fleet from the "
                "counter audit page).",
                messages.ERROR,
            )
            return None
        return host_ids

    def _page(self, request, template: str, **context):
        return TemplateResponse(
            request,
            template,
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "subtitle": None,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                "may_repair": self.has_repair_counters_permission(request),
                "media": self.media,
                **context,
            },
        )

    @admin.action(permissions=["view"], description="Audit counters")
    def audit_counters(self, request, queryset):
        """Compares the selected hosts' counters with their nodes; writes nothing."""
        host_ids = self._selection(request, queryset)
        if host_ids is None:
            return None
        findings = list(host_counter_findings(host_ids=host_ids))
        rows = change_rows((f.host_id, f.host_name, f.field, f.recorded, f.expected) for f in findings)
        return self._page(
            request,
            "admin/hosts/host/audit_counters.html",
            title=f"Audit of {len(host_ids)} host(s)",
            host_ids=host_ids,
            checked=len(host_ids),
            rows=rows,
        )

    @admin.action(permissions=["repair_counters"], description="Repair counters")
    def repair_counters(self, request, queryset):
        """A dry run lists old → new per host; confirming runs the repair of those hosts."""
        host_ids = self._selection(request, queryset)
        if host_ids is None:
            return None
        if request.POST.get("step") == "apply":
            report = host_counters_repair(host_ids=host_ids, actor=request.user, source=Source.ADMIN)
            self.message_user(request, repair_summary(report), repair_level(report))
            return None
        report = host_counters_repair(host_ids=host_ids, dry_run=True, actor=request.user, source=Source.ADMIN)
        for refusal in report.refused:
            detail = f"{refusal.host_name} cannot be repaired: {refusal.error.detail}"
            self.message_user(request, detail, messages.ERROR)
        return self._page(
            request,
            "admin/hosts/host/repair_counters.html",
            title=f"Repair the counters of {len(host_ids)} host(s)",
            host_ids=host_ids,
            checked=report.hosts_checked,
            rows=report_rows(report),
        )

    @admin.action(permissions=["change"], description="Issue agent token…")
    def issue_agent_token(self, request, queryset):
        """A confirmation page (a new token revokes the host's current one), then a page that
        shows each new token once: only its digest is stored."""
        host_ids = self._selection(request, queryset)
        if host_ids is None:
            return None
        if len(host_ids) > MAX_TOKEN_HOSTS:
            self.message_user(request, f"Issue tokens for at most {MAX_TOKEN_HOSTS} hosts at once.", messages.ERROR)
            return None
        hosts = list(Host.objects.filter(pk__in=host_ids).order_by("name"))
        if request.POST.get("step") != "apply":
            return self._page(
                request,
                "admin/hosts/host/agent_tokens.html",
                title=f"Issue agent tokens for {len(hosts)} host(s)",
                host_ids=host_ids,
                hosts=hosts,
                replacing=sum(1 for host in hosts if host.agent_token_digest),
            )
        issued = [(host, agent_token_issue(host=host, rotate=True)) for host in hosts]
        for host, _token in issued:
            self.log_change(request, host, "Issued a new agent token (the previous one, if any, is revoked).")
        response = self._page(
            request,
            "admin/hosts/host/agent_tokens.html",
            title=f"Agent tokens of {len(issued)} host(s)",
            issued=issued,
        )
        add_never_cache_headers(response)  # the tokens must not outlive this page
        return response


@admin.register(CounterRepair)
class CounterRepairAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "host", "changes", "actor", "source"]
    list_select_related = ["host", "actor"]
    list_filter = ["source"]
    search_fields = ["host__name"]
    sortable_by = ["created_at"]

    @admin.display(description="old → new")
    def changes(self, repair):
        return ", ".join(
            f"{counter_label(counter)} {counter_amount(counter, getattr(repair, 'old_' + counter))} → "
            f"{counter_amount(counter, getattr(repair, 'new_' + counter))}"
            for counter in COUNTER_FIELDS
            if getattr(repair, "old_" + counter) != getattr(repair, "new_" + counter)
        )
