"""Admin registrations for images, nodes and their history (minimal; see docs)."""

from django.contrib import admin

from nodes.models import Command, Image, ImageProperty, Node, NodeLog


class ImagePropertyInline(admin.TabularInline):
    model = ImageProperty
    extra = 0


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ["protocol", "version", "min_cpu_cores", "min_memory_bytes", "min_disk_bytes"]
    inlines = [ImagePropertyInline]


@admin.register(Node)
class NodeAdmin(admin.ModelAdmin):
    list_display = ["name", "host", "image", "cpu_cores", "memory_bytes", "disk_bytes", "state"]
    list_select_related = ["host", "image"]
    readonly_fields = ["host", "image", "properties", "cpu_cores", "memory_bytes", "disk_bytes", "state"]

    def has_add_permission(self, request):
        return False  # nodes are placed through the services (API, CLI)

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(NodeLog)
class NodeLogAdmin(admin.ModelAdmin):
    list_display = ["created_at", "event", "node_name", "host_name", "source", "actor"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Command)
class CommandAdmin(NodeLogAdmin):
    list_display = ["created_at", "kind", "node_id", "host"]
