"""Admin registration for hosts (minimal; counters are read-only)."""

from django.contrib import admin

from hosts.models import COUNTER_FIELDS, Host


@admin.register(Host)
class HostAdmin(admin.ModelAdmin):
    list_display = ["name", "node_count", "node_cpu_cores", "cpu_cores", "node_memory_bytes", "memory_bytes"]
    search_fields = ["name"]
    readonly_fields = COUNTER_FIELDS
