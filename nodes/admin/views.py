"""The fleet's counter audit page in the admin: current findings of hosts.audit and nodes.audit
(read when the page is opened), and a Repair button that runs host_counters_repair on the
hosts listed. It lives with the nodes admin because it reads both apps (hosts never import nodes)."""

from itertools import islice

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from config.errors import ApplicationError
from config.units import RESOURCE_LABELS, human_amount
from hosts.admin.helpers import as_uuid
from hosts.admin.repairs import change_rows, repair_level, repair_summary
from hosts.audit import CapacityWarning, HostFinding, host_audit
from hosts.models import Source
from hosts.repair import host_counters_repair
from nodes.audit import CONFIG_FIELD, node_allocation_findings

#: Findings shown per section; the commands (audit_resources, repair_counters) list them all.
MAX_FINDINGS = 500


@require_http_methods(["GET", "POST"])
def fleet_audit_view(request, *, model_admin):
    """GET: every host whose counters disagree with its nodes (old → new), every node whose
    allocation disagrees with its config, hosts over capacity. POST: repair the listed hosts."""
    user = request.user
    if not user.has_perm("hosts.view_host"):
        raise PermissionDenied
    if request.method == "POST":
        if not user.has_perm("hosts.repair_counters"):
            raise PermissionDenied
        host_ids = [pk for pk in map(as_uuid, request.POST.getlist("host")) if pk]
        try:
            report = host_counters_repair(host_ids=host_ids, actor=user, source=Source.ADMIN)
        except ApplicationError as error:
            model_admin.message_user(request, error.detail, messages.ERROR)
        else:
            model_admin.message_user(request, repair_summary(report), repair_level(report))
        return HttpResponseRedirect(request.path)

    drift, warnings = [], []  # each kept to MAX_FINDINGS + 1 (the one past says "and more")
    for item in host_audit():
        found = drift if isinstance(item, HostFinding) else warnings
        if len(found) <= MAX_FINDINGS:
            found.append(item)
    host_rows = change_rows((f.host_id, f.host_name, f.field, f.recorded, f.expected) for f in drift[:MAX_FINDINGS])
    node_findings = None
    if user.has_perm("nodes.view_node"):
        node_findings = [_node_row(finding) for finding in islice(node_allocation_findings(), MAX_FINDINGS + 1)]
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Counter audit",
        "subtitle": None,
        "opts": model_admin.opts,
        "host_rows": host_rows,
        "host_rows_cut": len(drift) > MAX_FINDINGS,
        "node_rows": node_findings[:MAX_FINDINGS] if node_findings is not None else None,
        "node_rows_cut": node_findings is not None and len(node_findings) > MAX_FINDINGS,
        "warnings": [_warning_row(warning) for warning in warnings[:MAX_FINDINGS]],
        "warnings_cut": len(warnings) > MAX_FINDINGS,
        "may_repair": user.has_perm("hosts.repair_counters"),
        "max_findings": MAX_FINDINGS,
    }
    return TemplateResponse(request, "admin/fleet_audit.html", context)


def _node_row(finding) -> dict:
    if finding.field == CONFIG_FIELD:
        label, recorded, expected = "config", repr(finding.recorded), repr(finding.expected)
    else:
        label = RESOURCE_LABELS[finding.field]
        recorded, expected = (
            human_amount(finding.field, finding.recorded),
            human_amount(finding.field, finding.expected),
        )
    return {
        "node_id": finding.node_id,
        "node_name": finding.node_name,
        "host_name": finding.host_name,
        "label": label,
        "recorded": recorded,
        "expected": expected,
        "url": reverse("admin:nodes_node_change", args=[finding.node_id]),
    }


def _warning_row(warning: CapacityWarning) -> dict:
    return {
        "host_id": warning.host_id,
        "host_name": warning.host_name,
        "label": RESOURCE_LABELS[warning.resource],
        "allocated": human_amount(warning.resource, warning.allocated),
        "capacity": human_amount(warning.resource, warning.capacity),
    }
