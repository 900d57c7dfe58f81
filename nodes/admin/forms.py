"""Forms of the nodes admin: adding a node and choosing the image of a bulk upgrade. They only
gather input; the services (node_create, node_upgrade) decide and write."""

from django import forms
from django.contrib import admin
from django.contrib.admin.widgets import AutocompleteSelect

from config.units import human_bytes, human_cores
from hosts.models import Host
from nodes.models import Image, Node

#: Up to this many hosts, the add form lists them all; past it, it searches them as you type.
HOSTS_IN_A_SELECT = 500

FORCE_HELP = "Place past the host's capacity. Allowed by your permission to overcommit hosts; it is logged."


def requirements(image: Image) -> str:
    """An image's minimum requirements in human units: `4 cores, 16.0 GiB, 1.0 TiB`."""
    amounts = (human_cores(image.min_cpu_cores), human_bytes(image.min_memory_bytes), human_bytes(image.min_disk_bytes))
    return ", ".join(amounts)


class ImageChoiceField(forms.ModelChoiceField):
    """Images labelled with what they require and the keys a node's config may set."""

    def label_from_instance(self, image):
        keys = ", ".join(prop.key for prop in image.properties.all())
        return f"{image} (needs {requirements(image)}{'; properties: ' + keys if keys else ''})"


class NodeCreateForm(forms.Form):
    name = forms.CharField(max_length=Node._meta.get_field("name").max_length)
    host = forms.ModelChoiceField(queryset=Host.objects.all())
    image = ImageChoiceField(queryset=Image.objects.prefetch_related("properties"))
    properties = forms.JSONField(
        required=False,
        initial=dict,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text='The node\'s config, e.g. {"sync_mode": "archive"}: keys of the image\'s properties, string '
        "values. Keys left out take the image's defaults.",
    )
    force = forms.BooleanField(required=False, label="Force", help_text=FORCE_HELP)
    auto_upgrade = forms.BooleanField(
        required=False, help_text="Follow newer images of its protocol (same major) by rollouts."
    )

    def __init__(self, *args, allow_force: bool, **kwargs):
        super().__init__(*args, **kwargs)
        if Host.objects.count() > HOSTS_IN_A_SELECT:
            # A search box over the hosts (the host admin's search), not a list of thousands.
            self.fields["host"].widget = AutocompleteSelect(Node._meta.get_field("host"), admin.site)
            self.fields["host"].widget.choices = self.fields["host"].choices
        if not allow_force:
            del self.fields["force"]

    def clean_properties(self):
        return self.cleaned_data["properties"] or {}


class UpgradeImageForm(forms.Form):
    """The target of a bulk upgrade: an image of the selected nodes' one protocol."""

    image = forms.ModelChoiceField(queryset=Image.objects.none(), widget=forms.RadioSelect, empty_label=None)
    force = forms.BooleanField(required=False, label="Force", help_text=FORCE_HELP)

    def __init__(self, *args, protocol: str, running: dict, allow_force: bool, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["image"]
        field.queryset = Image.objects.filter(protocol=protocol).order_by("version")
        field.label_from_instance = lambda image: _target_label(image, running.get(image.pk, 0))
        if not allow_force:
            del self.fields["force"]


def _target_label(image: Image, running: int) -> str:
    label = f"{image} — needs {requirements(image)}"
    if running == 1:
        label += " — 1 of the selected nodes already runs it"
    elif running:
        label += f" — {running} of the selected nodes already run it"
    return label
