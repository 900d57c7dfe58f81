"""Template filters for human units: `{{ node.memory_bytes|human_bytes }}` -> `8.0 GiB`."""

from django import template

from config import units

register = template.Library()


@register.filter
def human_bytes(amount: int) -> str:
    return units.human_bytes(amount)


@register.filter
def human_cores(amount: int) -> str:
    return units.human_cores(amount)
