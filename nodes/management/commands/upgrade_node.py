"""manage.py upgrade_node NODE IMAGE: the operator's path to node_upgrade (source `cli`).

Exit 0 on success (or, with --dry-run, when the upgrade would apply: its last line says
`Would apply: yes.` or `no.` and why), 1 on a refusal (the error's detail, no traceback), 2 on
a usage error. Shell access is full trust: --force needs no
permission here."""

from django.core.management.base import BaseCommand, CommandError

from config.errors import ApplicationError
from config.text import escape_unprintable
from config.units import RESOURCE_LABELS, human_amount
from hosts.capacity import allocatable
from hosts.models import COUNTER_OF_RESOURCE, Source
from nodes.changes import UpgradeOutcome, node_upgrade, node_upgrade_plan
from nodes.selectors import image_by_id_or_label, node_by_id_or_name


def _allocation_lines(outcome: UpgradeOutcome) -> list[str]:
    if not outcome.new_known:
        return [f"  no allocation on {outcome.to_image.label} can be computed ({outcome.error.code})"]
    lines = []
    for name, old in outcome.old.items():
        new = getattr(outcome.new, name)
        lines.append(
            f"  {RESOURCE_LABELS[name]:<7} {human_amount(name, old)} -> {human_amount(name, new)}"
            f"  ({old} -> {new}, {new - old:+d})"
        )
    return lines


def _plan_lines(outcome: UpgradeOutcome) -> list[str]:
    host = outcome.host
    lines = [f"Host {host.name} after the upgrade:"]
    for name in outcome.old.as_dict():
        used = getattr(host, COUNTER_OF_RESOURCE[name])
        capacity = allocatable(host, name)  # what the fit reads (§11)
        fits = "fits" if outcome.fits[name] else "DOES NOT FIT"
        lines.append(
            f"  {RESOURCE_LABELS[name]:<7} {human_amount(name, used)} of {human_amount(name, capacity)} used, "
            f"{human_amount(name, max(capacity - used, 0))} free  [{fits}]"
        )
    return lines


def _forced_note(outcome: UpgradeOutcome, force: bool) -> str:
    """` (forced)` when force placed the node past capacity, as NodeLog's `forced` records it."""
    if not force:
        return ""
    return " (forced)" if not all(outcome.fits.values()) else " (--force not needed: it fits)"


class Command(BaseCommand):
    help = "Upgrades a node to another image of its protocol (NODE: id or name; IMAGE: id or protocol@version)."

    def add_arguments(self, parser):
        parser.add_argument("node", metavar="NODE", help="node id or name")
        parser.add_argument("image", metavar="IMAGE", help="image id or protocol@version")
        parser.add_argument("--force", action="store_true", help="place past the host's capacity")
        parser.add_argument("--dry-run", action="store_true", help="print the plan, write nothing")

    def handle(self, *args, node: str, image: str, force: bool, dry_run: bool, **options):
        try:
            target = node_by_id_or_name(node)
            to_image = image_by_id_or_label(image)
            if dry_run:
                outcome = node_upgrade_plan(node_id=target.pk, image_id=to_image.pk, force=force)
            else:
                outcome = node_upgrade(node_id=target.pk, image_id=to_image.pk, force=force, source=Source.CLI)
        except ApplicationError as error:
            raise CommandError(escape_unprintable(error.detail), returncode=1) from None

        heading = "Plan" if dry_run else "Upgraded"
        lines = [
            f"{heading}: {outcome.node.name} on {outcome.host.name}: "
            f"{outcome.from_image.label} -> {outcome.to_image.label}{_forced_note(outcome, force)}",
            *_allocation_lines(outcome),
            *(f"  warning: {warning}" for warning in outcome.warnings),
        ]
        if dry_run:
            if outcome.capacity_checked:  # past an earlier error, whether it fits is not the question
                lines += _plan_lines(outcome)
            lines.append(
                "Would apply: yes."
                if outcome.would_apply
                else f"Would apply: no. Applying it would be refused: {outcome.error.detail}"
            )
        self.stdout.write("\n".join(map(escape_unprintable, lines)))  # stored names: no forged lines
        if dry_run and outcome.error:
            raise CommandError(f"dry run: {outcome.error.code}", returncode=1)
