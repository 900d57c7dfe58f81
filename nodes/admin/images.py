"""The images admin: properties inline, requirements and properties frozen once a node runs the
image, "Roll out this image…" (an auto-upgrade rollout)."""

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Count, Exists, OuterRef
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html

from config.units import human_amount
from hosts.admin.helpers import ErrorsAsMessages, PrintableFieldsForm
from nodes.admin.forms import requirements
from nodes.models import IMAGE_IN_USE, Image, ImageProperty, Node
from nodes.resources import Resources
from nodes.rollouts.auto import rollout_auto_create

# ---------------------------------------------------------------------------------------------
# Images


def _nodes_running(image: Image | None) -> int:
    """How many nodes run the image (0 for an image being added); counted once per request."""
    if image is None or image.pk is None:
        return 0
    if not hasattr(image, "_nodes_running"):
        image._nodes_running = image.node_total()
    return image._nodes_running


class ImagePropertyForm(PrintableFieldsForm):
    printable_fields = ("key", "default_value")


class ImageForm(PrintableFieldsForm):
    printable_fields = ("protocol", "version")


class ImagePropertyInline(admin.TabularInline):
    model = ImageProperty
    form = ImagePropertyForm
    extra = 0
    fields = ["key", "default_value", "add_cpu_cores", "add_memory_bytes", "add_disk_bytes"]
    frozen_fields = ["key", "default_value", "adds"]

    def get_fields(self, request, obj=None):
        return self.frozen_fields if _nodes_running(obj) else self.fields

    def get_readonly_fields(self, request, obj=None):
        return self.frozen_fields if _nodes_running(obj) else []

    @admin.display(description="a node whose value differs from the default adds")
    def adds(self, prop):
        adds = Resources.from_mapping(vars(prop), prefix="add_")
        return ", ".join(human_amount(name, amount) for name, amount in adds.items())

    def has_add_permission(self, request, obj=None):
        return not _nodes_running(obj) and super().has_add_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return not _nodes_running(obj) and super().has_delete_permission(request, obj)


@admin.register(Image)
class ImageAdmin(ErrorsAsMessages):
    form = ImageForm
    list_display = ["__str__", "protocol", "version", "minimum", "in_use"]
    list_filter = ["protocol"]
    search_fields = ["protocol", "version"]
    inlines = [ImagePropertyInline]
    actions = ["roll_out"]
    requirement_fields = ["protocol", "version", "min_cpu_cores", "min_memory_bytes", "min_disk_bytes"]

    class Media:
        css = {"all": ["hosts/admin.css"]}

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(in_use=Exists(Node.objects.filter(image=OuterRef("pk"))))

    def get_fields(self, request, obj=None):
        return [*self.requirement_fields, "minimum", "usage"] if obj else self.requirement_fields

    def get_readonly_fields(self, request, obj=None):
        return [*self.requirement_fields, "minimum", "usage"] if _nodes_running(obj) else ["minimum", "usage"]

    def has_delete_permission(self, request, obj=None):
        return not _nodes_running(obj) and super().has_delete_permission(request, obj)

    def delete_queryset(self, request, queryset):
        """One Image.delete() each (it locks the image and counts its nodes first), in pk order."""
        with transaction.atomic():
            for image in queryset.order_by("pk"):
                image.delete()

    def get_deleted_objects(self, objs, request):
        """Refuses images in use up front, rather than listing every node that protects them."""
        in_use = Image.objects.filter(pk__in=[image.pk for image in objs]).annotate(count=Count("nodes"))
        protected = [f"{image}: run by {image.count} node(s)" for image in in_use if image.count]
        if protected:
            return [], {}, set(), protected
        return super().get_deleted_objects(objs, request)

    @admin.action(description="Roll out this image…")
    def roll_out(self, request, queryset):
        """To the rollout page of the one selected image: selection, plan, confirm (§10)."""
        images = list(queryset[:2])
        if len(images) != 1:
            self.message_user(request, "Select exactly one image to roll out.", messages.WARNING)
            return None
        return HttpResponseRedirect(reverse("admin:nodes_rollout_image", args=[images[0].pk]))

    def save_related(self, request, form, formsets, change):
        """A new image (properties saved too) rolls out to the auto_upgrade nodes it is newer for."""
        super().save_related(request, form, formsets, change)
        if not change and (rollout := rollout_auto_create(image=form.instance, actor=request.user)):
            self.message_user(
                request,
                f"Auto-upgrade: rollout {str(rollout.pk)[:8]} to {form.instance}, {rollout.state}.",
                messages.INFO,
            )

    @admin.display(description="minimum (CPU, memory, disk)")
    def minimum(self, image):
        return requirements(image)

    @admin.display(description="in use", boolean=True, ordering="in_use")
    def in_use(self, image):
        return image.in_use

    @admin.display(description="nodes running it")
    def usage(self, image):
        count = _nodes_running(image)
        if not count:
            return "None: requirements and properties can still change."
        url = reverse("admin:nodes_node_changelist") + f"?image__id__exact={image.pk}"
        return format_html('<a href="{}">{} node(s)</a>. {}', url, count, IMAGE_IN_USE.format(image=image, count=count))
