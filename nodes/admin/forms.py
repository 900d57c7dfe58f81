"""Forms of the nodes admin: adding a node (on a named host, or placed: §11), placing many
(nodes/admin/placement.py) and choosing the image of a bulk upgrade. They only gather input;
the services (node_create, node_placement_plan, node_upgrade) decide and write."""

from django import forms
from django.contrib import admin
from django.contrib.admin.widgets import AutocompleteSelect

from config.units import human_bytes, human_cores
from hosts.admin.capacity import NO_REGION
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


STRATEGY_HELP = "binpack: the fullest host that fits (keeps others free); spread: the emptiest."
SPREAD_PROTOCOL_HELP = "Prefer hosts with fewer nodes of the image's protocol, then the strategy."


def region_choices(*, empty: str) -> list[tuple[str, str]]:
    """`empty` (any region), hosts without a region, then each region of the fleet (one query)."""
    regions = Host.objects.exclude(region="").order_by("region").values_list("region", flat=True).distinct()
    return [("", empty), (NO_REGION, "hosts without a region"), *((region, region) for region in regions)]


def region_of(choice: str) -> str | None:
    """A region choice as the placement takes it: None for any region, "" for hosts without one."""
    if not choice:
        return None
    return "" if choice == NO_REGION else choice


class PlacementFields(forms.Form):
    """The placement options (§11): strategy, region, spread_protocol."""

    strategy = forms.ChoiceField(
        choices=[("binpack", "binpack"), ("spread", "spread")], initial="binpack", help_text=STRATEGY_HELP
    )
    region = forms.ChoiceField(required=False, choices=[])
    spread_protocol = forms.BooleanField(required=False, label="Spread protocol", help_text=SPREAD_PROTOCOL_HELP)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["region"].choices = region_choices(empty="any region")

    def placement(self) -> dict:
        """The options set, as node_create and node_placement_plan take them."""
        data, placement = self.cleaned_data, {}
        if data.get("strategy"):
            placement["strategy"] = data["strategy"]
        if data.get("region"):
            placement["region"] = region_of(data["region"])
        if data.get("spread_protocol"):
            placement["spread_protocol"] = True
        return placement


class NodeCreateForm(PlacementFields):
    """A node on the host chosen here, or, with no host, on the host placement chooses (§11) by
    the options below it. A host together with placement options, or force without a host, is
    refused by node_create with its own message, as the API refuses it."""

    name = forms.CharField(max_length=Node._meta.get_field("name").max_length)
    host = forms.ModelChoiceField(
        queryset=Host.objects.all(),
        required=False,
        empty_label="(none: placement chooses one)",
        help_text="Leave empty to let placement choose the host by the options below.",
    )
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

    field_order = ["name", "host", "image", "properties", "force", "auto_upgrade", "strategy", "region"]

    def __init__(self, *args, allow_force: bool, **kwargs):
        super().__init__(*args, **kwargs)
        # Here a strategy is an option given (empty: none), so that a named host with no
        # option asks for no placement.
        self.fields["strategy"] = forms.ChoiceField(
            required=False,
            choices=[("", "(default: binpack)"), ("binpack", "binpack"), ("spread", "spread")],
            help_text=f"Only without a host. {STRATEGY_HELP}",
        )
        self.fields["region"].help_text = "Only without a host: choose among the hosts of this region."
        self.fields["spread_protocol"].help_text = f"Only without a host. {SPREAD_PROTOCOL_HELP}"
        self.order_fields(self.field_order)
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
