"""manage.py rollout plan|create|start|pause|resume|abort|status: the operator's path to the
rollout services (§10). Exit 0 on success, 1 on a refusal (the error's detail, no traceback),
2 on a usage error (bad arguments, or an image, host, node or rollout that does not exist).
`--json` prints one JSON document on stdout: the API's representation."""

import json

from django.core.management.base import BaseCommand, CommandError
from django.core.serializers.json import DjangoJSONEncoder

from config.errors import ApplicationError, InvalidInput, NotFound
from config.units import RESOURCES, human_amount
from hosts.audit import hosts_by_id_or_name
from nodes.rollouts.api import RolloutPlanSerializer, RolloutSerializer
from nodes.rollouts.models import RolloutNode
from nodes.rollouts.plan import Plan, rollout_plan, selection_check
from nodes.rollouts.selectors import rollout_by_id, rollout_counts
from nodes.rollouts.services import ROLLOUT_CONTROLS, rollout_create
from nodes.selectors import image_by_id_or_label, node_by_id_or_name


def _amounts(resources) -> str:
    return ", ".join(human_amount(name, getattr(resources, name)) for name in RESOURCES)


class Command(BaseCommand):
    help = "Plans, creates and steers rollouts: an image to many nodes, batch after batch (§10)."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        for name in ("plan", "create"):
            sub = actions.add_parser(name, help=f"{name} a rollout of IMAGE (id or protocol@version)")
            sub.add_argument("image", metavar="IMAGE")
            sub.add_argument("--from-version", action="append", default=[], dest="from_versions", metavar="V")
            sub.add_argument("--host", action="append", default=[], dest="hosts", metavar="H", help="id or name")
            sub.add_argument("--node", action="append", default=[], dest="nodes", metavar="N", help="id or name")
            sub.add_argument("--batch-size", type=int, default=25)
            sub.add_argument("--canary", type=int, default=1)
            sub.add_argument("--max-failures", type=int, default=1)
            sub.add_argument("--result-timeout", type=int, default=3600, metavar="S", dest="result_timeout_seconds")
            sub.add_argument("--no-pause-after-canary", action="store_false", dest="pause_after_canary")
            sub.add_argument("--start", action="store_true", help="start at once (create)")
            sub.add_argument("--json", action="store_true")
        for name in (*ROLLOUT_CONTROLS, "status"):
            sub = actions.add_parser(name, help=f"{name} the rollout ID")
            sub.add_argument("rollout_id", metavar="ID")
            if name == "resume":
                sub.add_argument("--max-failures", type=int, default=None)
            sub.add_argument("--json", action="store_true")

    def handle(self, *args, action: str, **options):
        try:
            if action in ("plan", "create"):
                self._plan_or_create(action, **options)
            else:
                self._control(action, **options)
        except (NotFound, InvalidInput) as error:
            raise CommandError(error.detail, returncode=2) from None
        except ApplicationError as error:
            raise CommandError(error.detail, returncode=1) from None

    def _emit(self, data) -> None:
        self.stdout.write(json.dumps(data, cls=DjangoJSONEncoder, indent=2))

    def _plan_or_create(self, action, *, image, hosts, nodes, start, json, **options):
        selection = selection_check(
            image_id=image_by_id_or_label(image).pk,
            host_ids=[host.pk for host in hosts_by_id_or_name(hosts)],
            node_ids=[node_by_id_or_name(ref).pk for ref in nodes],
            from_versions=options["from_versions"],
            batch_size=options["batch_size"],
            canary=options["canary"],
            max_failures=options["max_failures"],
            result_timeout_seconds=options["result_timeout_seconds"],
            pause_after_canary=options["pause_after_canary"],
        )
        if action == "plan":
            plan = rollout_plan(selection)
            if json:
                self._emit(RolloutPlanSerializer(plan).data)
            else:
                self.stdout.write("\n".join(_plan_lines(plan)))
            return
        rollout = rollout_create(selection=selection, start=start)
        self._show(rollout, json)

    def _control(self, action, *, rollout_id, json, **options):
        if action == "status":
            rollout = rollout_by_id(rollout_id)
        else:
            extra = {"max_failures": options["max_failures"]} if action == "resume" else {}
            rollout = ROLLOUT_CONTROLS[action](rollout_id=rollout_id, **extra)
        self._show(rollout, json)

    def _show(self, rollout, as_json: bool) -> None:
        counts = rollout_counts([rollout.pk])
        if as_json:
            self._emit(RolloutSerializer(rollout, context={"counts": counts}).data)
            return
        done = ", ".join(f"{n} {status}" for status, n in counts[rollout.pk].items() if n)
        lines = [
            f"Rollout {rollout.pk} to {rollout.image}: {rollout.state}, "
            f"batch {rollout.current_batch} of {rollout.batches}",
            f"  nodes: {done or 'none'}",
        ]
        if rollout.reason:
            lines.append(f"  {rollout.reason}")
        failed = RolloutNode.objects.filter(rollout=rollout, status__in=("failed", "rolled_back", "refused"))
        lines += [f"  {row.node_name}: {row.status} {row.reason}".rstrip() for row in failed.order_by("position")[:20]]
        self.stdout.write("\n".join(lines))


def _plan_lines(plan: Plan) -> list[str]:
    image = plan.selection.image
    lines = [
        f"Plan: {image} — {plan.counts['pending']} node(s) in {plan.batches} batch(es), "
        f"{plan.counts['skipped']} skipped"
    ]
    for node in plan.nodes:
        where = f"batch {node.batch}" if node.batch else "skipped"
        line = f"  {node.host_name}/{node.node_name}: {where}: {_amounts(node.old)} -> {_amounts(node.new)}"
        lines.append(line + (f" — {node.reason}" if node.reason else ""))
    lines.append("Hosts after:")
    for host in plan.hosts:
        lines.append(
            f"  {host.host_name}: {host.selected} to upgrade, {host.skipped} skipped; "
            f"free after {_amounts(host.free_after)}"
        )
    lines.append(f"Total: {_amounts(plan.old)} -> {_amounts(plan.new)}")
    return lines
