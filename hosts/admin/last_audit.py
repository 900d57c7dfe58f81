"""The hosts list's "last audit" filter: the hosts the newest AuditRun found drifted (the fleet
page's drifted count links here). Reads the recorded ids, so it never runs the audit."""

from django.contrib import admin

from hosts.models import AuditRun


class LastAuditFilter(admin.SimpleListFilter):
    title = "last audit"
    parameter_name = "last_audit"

    def lookups(self, request, model_admin):
        return [("drifted", "found drifted")]

    def queryset(self, request, queryset):
        if self.value() != "drifted":
            return queryset
        last = AuditRun.objects.only("drifted_host_ids").first()
        return queryset.filter(pk__in=last.drifted_host_ids if last else [])
