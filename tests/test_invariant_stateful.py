"""The core promise, checked as a state machine on PostgreSQL (hypothesis): whatever sequence of
creates (named, or placed by §11 with the plan predicting the host), changes of a host's
capacity model (reserve, ratio, slots, scheduling), upgrades (valid or not, forced, planned),
deletes, agent acks and results (rollbacks and
retry_later included), cancels, rollouts (created, started, advanced, paused, resumed, aborted,
their nodes' agents answering by the result rule), drift written around the app and repairs,
after every step each
host's counters equal its nodes' sums — except for exactly the drift injected and not yet
repaired, which the audit reports exactly —, every node has at most one open command (and is
`creating`/`upgrading` exactly when it has one), and a rolled-back node's allocation is its
required allocation on its image; a node is held by at most one active rollout, a rollout never
upgrades a node twice, a rollout row waits (`upgrading`) only on an open command, and — whatever
step fails and whichever agent goes silent — every rollout that waits has a way forward (an
advance queued, or one the workers' sweep re-enqueues; issue 19)."""

from datetime import timedelta

import pytest
from django.db import OperationalError, connection
from django.db.models import F
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from config.errors import ApplicationError, Busy
from hosts import capacity
from hosts.audit import host_counter_findings
from hosts.models import COUNTER_FIELDS, CounterRepair, Host
from hosts.repair import host_counters_repair
from hosts.services import host_update
from nodes.agent.lifecycle import command_ack, command_cancel, command_result
from nodes.changes import image_spec, node_create, node_delete, node_placement_plan, node_upgrade, node_upgrade_plan
from nodes.models import OPEN_STATUSES, OUTCOMES_OF_KIND, Command, Image, ImageProperty, Node, NodeLog
from nodes.resources import Resources, required_allocation
from nodes.rollouts.models import ACTIVE_STATES, Rollout, RolloutNode
from nodes.rollouts.plan import selection_check
from nodes.rollouts.services import (
    rollout_abort,
    rollout_advance,
    rollout_create,
    rollout_pause,
    rollout_resume,
    rollout_start,
)
from nodes.rollouts.ticks import rollout_sweep, ticking
from tests.factories import GiB, HostFactory, ImageFactory, ImagePropertyFactory
from tests.invariants import counter_drift
from tests.support import fleet_snapshot


class Fleet(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        for model in (
            DBTaskResult,
            RolloutNode,
            Rollout,
            NodeLog,
            Command,
            CounterRepair,
            Node,
            ImageProperty,
            Image,
            Host,
        ):
            model.objects.all().delete()
        self.hosts = [
            HostFactory(cpu_cores=12, memory_bytes=48 * GiB, disk_bytes=2048 * GiB),
            HostFactory(cpu_cores=6, memory_bytes=16 * GiB, disk_bytes=1024 * GiB),
        ]
        small = ImageFactory(protocol="eth", min_cpu_cores=1, min_memory_bytes=4 * GiB, min_disk_bytes=100 * GiB)
        large = ImageFactory(protocol="eth", min_cpu_cores=4, min_memory_bytes=8 * GiB, min_disk_bytes=300 * GiB)
        ImagePropertyFactory(image=large, key="archive", default_value="off", add_disk_bytes=500 * GiB)
        ImagePropertyFactory(image=small, key="archive", default_value="off", add_disk_bytes=200 * GiB)
        lean = ImageFactory(protocol="eth", min_cpu_cores=0, min_memory_bytes=0, min_disk_bytes=0)
        other = ImageFactory(protocol="btc", min_cpu_cores=2, min_memory_bytes=2 * GiB, min_disk_bytes=50 * GiB)
        self.images = [small, large, lean, other]
        self.nodes = []
        self.rollouts = []
        self.injected = {}  # (host id, counter) -> recorded minus true, written by SQL
        self.serial = 0

    def _counter(self, host, counter):
        return Host.objects.values_list(counter, flat=True).get(pk=host.pk)

    @rule(host=st.integers(0, 1), image=st.integers(0, 3), archive=st.booleans(), force=st.booleans())
    def create(self, host, image, archive, force):
        self.serial += 1
        properties = {"archive": "on"} if archive and self.images[image].properties.exists() else {}
        try:
            change = node_create(
                name=f"n{self.serial}",
                host_id=self.hosts[host].pk,
                image_id=self.images[image].pk,
                properties=properties,
                force=force,
            )
        except ApplicationError as error:
            assert not (force and error.code == "insufficient_capacity")
            assert (error.code == "host_unavailable") == (
                Host.objects.get(pk=self.hosts[host].pk).scheduling == "draining"
            )
            return
        self.nodes.append(change.node.pk)

    @rule(
        image=st.integers(0, 3),
        archive=st.booleans(),
        strategy=st.sampled_from(["binpack", "spread"]),
        spread_protocol=st.booleans(),
    )
    def place(self, image, archive, strategy, spread_protocol):
        """A create without a host (§11): the plan of one node names the host the create takes,
        or the refusal the create gets; the host taken had room for the node."""
        self.serial += 1
        properties = {"archive": "on"} if archive and self.images[image].properties.exists() else {}
        placement = {"strategy": strategy, "spread_protocol": spread_protocol}
        planned = node_placement_plan(image_id=self.images[image].pk, properties=properties, placement=placement).plan
        try:
            change = node_create(
                name=f"n{self.serial}", image_id=self.images[image].pk, properties=properties, placement=placement
            )
        except ApplicationError as error:
            assert error.code == "no_host_available", error
            assert planned.error is not None and planned.error.detail == error.detail
            return
        assert [row["host_id"] for row in planned.placements] == [change.host.pk]
        host = Host.objects.get(pk=change.host.pk)
        assert host.scheduling == "automatic"
        for name, amount in Resources.of(change.node).items():
            assert amount == 0 or capacity.used(host, name) <= capacity.allocatable(host, name)
        self.nodes.append(change.node.pk)

    @rule(
        host=st.integers(0, 1),
        reserved_cpu=st.integers(0, 14),
        ratio=st.sampled_from(["0.5", "1", "1.5", "2.0001"]),
        max_nodes=st.one_of(st.none(), st.integers(0, 6)),
        scheduling=st.sampled_from(["automatic", "automatic", "manual", "draining"]),
    )
    def change_host(self, host, reserved_cpu, ratio, max_nodes, scheduling):
        """The capacity model changed under the host's lock: allowed even when the host ends
        over-allocated, and the answer names exactly what is over; counters untouched."""
        before = Host.objects.filter(pk=self.hosts[host].pk).values(*COUNTER_FIELDS).get()
        written = host_update(
            host_id=self.hosts[host].pk,
            values={
                "reserved_cpu_cores": reserved_cpu,
                "memory_allocation_ratio": ratio,
                "max_nodes": max_nodes,
                "scheduling": scheduling,
            },
        )
        fresh = Host.objects.get(pk=self.hosts[host].pk)
        assert written.over_allocated == capacity.over_allocated(fresh)
        assert Host.objects.filter(pk=fresh.pk).values(*COUNTER_FIELDS).get() == before

    @precondition(lambda self: self.nodes)
    @rule(data=st.data(), image=st.integers(0, 3), force=st.booleans(), dry_run=st.booleans())
    def upgrade(self, data, image, force, dry_run):
        node = data.draw(st.sampled_from(self.nodes))
        target = self.images[image].pk
        if dry_run:
            before = fleet_snapshot()
            plan = node_upgrade_plan(node_id=node, image_id=target, force=force)
            assert fleet_snapshot() == before  # a plan writes nothing
            try:
                node_upgrade(node_id=node, image_id=target, force=force)
            except ApplicationError as error:
                assert plan.error is not None and plan.error.code == error.code  # the plan predicted it
            else:
                assert plan.error is None
            return
        try:
            node_upgrade(node_id=node, image_id=target, force=force)
        except ApplicationError as error:
            assert not (force and error.code == "insufficient_capacity")

    @precondition(lambda self: self.nodes)
    @rule(data=st.data())
    def delete(self, data):
        node = data.draw(st.sampled_from(self.nodes))
        try:
            node_delete(node_id=node)
        except ApplicationError:
            return
        self.nodes.remove(node)

    def _draw_command(self, data, *, open_only: bool):
        commands = Command.objects.filter(status__in=OPEN_STATUSES) if open_only else Command.objects.all()
        pks = sorted(commands.values_list("pk", flat=True))
        return Command.objects.get(pk=data.draw(st.sampled_from(pks))) if pks else None

    @rule(data=st.data())
    def ack(self, data):
        command = self._draw_command(data, open_only=True)
        if command is not None:
            assert command_ack(command_id=command.pk, host_id=command.host_id).command.status == "acked"

    @rule(data=st.data(), outcome=st.sampled_from(["succeeded", "failed", "rolled_back", "retry_later"]))
    def result(self, data, outcome):
        command = self._draw_command(data, open_only=data.draw(st.booleans(), label="open only"))
        if command is None:
            return
        before = fleet_snapshot()
        retry = {"retry_after_seconds": 1} if outcome == "retry_later" else {}
        try:
            change = command_result(command_id=command.pk, host_id=command.host_id, outcome=outcome, **retry)
        except ApplicationError as error:
            assert error.code in ("invalid", "command_closed"), error
            assert error.code != "invalid" or outcome not in OUTCOMES_OF_KIND[command.kind]
            assert fleet_snapshot() == before
            return
        if command.is_open:
            assert change.command.status == ("pending" if outcome == "retry_later" else outcome)
        else:
            assert change.changed is False and fleet_snapshot() == before

    @rule(data=st.data())
    def cancel(self, data):
        command = self._draw_command(data, open_only=data.draw(st.booleans(), label="open only"))
        if command is None:
            return
        try:
            command_cancel(command_id=command.pk, source="admin")
        except ApplicationError as error:
            assert error.code == "invalid_state" and not command.is_open
            return
        assert not command.is_open or Command.objects.get(pk=command.pk).status == "cancelled"

    @rule(
        image=st.integers(0, 3),
        canary=st.integers(0, 2),
        batch_size=st.integers(1, 3),
        max_failures=st.integers(1, 2),
        pause_after_canary=st.booleans(),
        start=st.booleans(),
    )
    def rollout(self, image, canary, batch_size, max_failures, pause_after_canary, start):
        selection = selection_check(
            image_id=self.images[image].pk,
            canary=canary,
            batch_size=batch_size,
            max_failures=max_failures,
            pause_after_canary=pause_after_canary,
        )
        before = set(RolloutNode.objects.filter(holds_node=True).values_list("node_id", flat=True))
        rollout = rollout_create(selection=selection, start=start)
        mine = set(RolloutNode.objects.filter(rollout=rollout, holds_node=True).values_list("node_id", flat=True))
        assert not mine & before  # a node held by an active rollout is skipped by another
        self.rollouts.append(rollout.pk)

    @precondition(lambda self: self.rollouts)
    @rule(data=st.data())
    def rollout_advance(self, data):
        rollout_advance(rollout_id=data.draw(st.sampled_from(self.rollouts)))

    @precondition(lambda self: self.rollouts)
    @rule(data=st.data(), at=st.integers(0, 14))
    def rollout_step_fails(self, data, at):
        """An advance whose `at`-th statement inside its steps' transactions the database refuses
        (a lock timeout, a lost connection, a deadlock beyond the retries): it raises, or it
        finished before that point. (Here the test's own transaction wraps everything, so only
        statements inside a step's savepoint can fail without breaking it; a failure before the
        steps — the tick's own statements — is tests/nodes/rollouts/test_background_faults.py's.)"""
        seen = []

        def refuse(execute, sql, params, many, context):
            if len(connection.atomic_blocks) < 2 or len(seen) > at:  # outside a step, or refused already
                return execute(sql, params, many, context)
            seen.append(sql)
            if len(seen) == at + 1:
                raise OperationalError(f"injected failure at statement {at}")
            return execute(sql, params, many, context)

        rollout_id = data.draw(st.sampled_from(self.rollouts))
        try:
            with connection.execute_wrapper(refuse):
                rollout_advance(rollout_id=rollout_id)
        except (Busy, OperationalError):
            assert len(seen) == at + 1
            assert Rollout.objects.get(pk=rollout_id).step_failures >= 1  # recorded

    @precondition(lambda self: self.rollouts)
    @rule(data=st.data())
    def agent_goes_silent(self, data):
        """Time passes without an answer: a rollout's upgrading rows and deferrals pass their
        deadlines, and its tick is due."""
        rollout = Rollout.objects.get(pk=data.draw(st.sampled_from(self.rollouts)))
        past = timezone.now() - timedelta(seconds=rollout.result_timeout_seconds + 1)
        RolloutNode.objects.filter(rollout=rollout, status="upgrading").update(upgraded_at=past)
        RolloutNode.objects.filter(rollout=rollout, deferred_at__isnull=False).update(deferred_at=past)
        Rollout.objects.filter(pk=rollout.pk).update(tick_due_at=None)

    @precondition(lambda self: self.rollouts)
    @rule()
    def sweep(self):
        rollout_sweep()
        missing = self._needing_ticks() - self._queued_advances()
        assert not missing, missing

    def _needing_ticks(self) -> set:
        upgrading = set(RolloutNode.objects.filter(status="upgrading").values_list("rollout_id", flat=True))
        running = set(Rollout.objects.filter(state="running").values_list("pk", flat=True))
        return {str(pk) for pk in running | upgrading}

    def _queued_advances(self) -> set:
        return {
            args["args"][0]
            for args in DBTaskResult.objects.filter(status="READY").values_list("args_kwargs", flat=True)
        }

    @precondition(lambda self: self.rollouts)
    @rule(data=st.data(), action=st.sampled_from(["start", "pause", "resume", "abort"]), limit=st.integers(1, 4))
    def rollout_control(self, data, action, limit):
        rollout = Rollout.objects.get(pk=data.draw(st.sampled_from(self.rollouts)))
        control = {"start": rollout_start, "pause": rollout_pause, "resume": rollout_resume, "abort": rollout_abort}
        extra = {"max_failures": limit} if action == "resume" else {}
        try:
            control[action](rollout_id=rollout.pk, **extra)
        except ApplicationError as error:
            assert error.code == "invalid_state", error
            allowed = {"start": ["planned"], "pause": ["running"], "resume": ["paused", "halted"]}
            assert rollout.state not in allowed.get(action, ACTIVE_STATES) or action == "resume"

    @rule(host=st.integers(0, 1), counter=st.sampled_from(COUNTER_FIELDS), amount=st.integers(-3 * GiB, 3 * GiB))
    def inject_drift(self, host, counter, amount):
        host = self.hosts[host]
        if amount == 0 or self._counter(host, counter) + amount < 0:
            return
        with connection.cursor() as cursor:  # a write made around the application
            cursor.execute(f"UPDATE hosts_host SET {counter} = {counter} + %s WHERE id = %s", [amount, host.pk])
        key = (host.pk, counter)
        self.injected[key] = self.injected.get(key, 0) + amount
        if self.injected[key] == 0:
            del self.injected[key]

    @rule()
    def repair(self):
        report = host_counters_repair()
        assert {c.host_id for c in report.changes} == {host_id for host_id, _ in self.injected}
        self.injected.clear()
        assert host_counters_repair(dry_run=True).changes == []  # idempotent

    @invariant()
    def counters_equal_sums_but_for_injected_drift(self):
        found = {}
        for host_id, (recorded, truth) in counter_drift().items():
            for counter, have, want in zip(COUNTER_FIELDS, recorded, truth, strict=True):
                if have != want:
                    found[(host_id, counter)] = have - want
        assert found == self.injected

    @invariant()
    def one_open_command_per_node_and_states_agree(self):
        open_commands = {}
        for node_id, kind in Command.objects.filter(status__in=OPEN_STATUSES).values_list("node_id", "kind"):
            assert node_id not in open_commands
            open_commands[node_id] = kind
        for node in Node.objects.all():
            expected = {"creating": "node_create", "upgrading": "node_upgrade"}.get(node.state)
            assert open_commands.get(node.pk) == expected, (node.name, node.state)

    @invariant()
    def a_rolled_back_node_holds_its_required_allocation(self):
        for node in Node.objects.select_related("image").prefetch_related("image__properties"):
            last = NodeLog.objects.filter(node_id=node.pk).order_by("-id").values_list("event", flat=True).first()
            if last == "upgrade_rolled_back" or (last == "command_cancelled" and node.state == "running"):
                assert Resources.of(node) == required_allocation(image_spec(node.image), node.properties)

    @invariant()
    def rollouts_hold_each_node_once_and_upgrade_it_once(self):
        held = list(
            RolloutNode.objects.filter(holds_node=True, rollout__state__in=ACTIVE_STATES).values_list(
                "node_id", flat=True
            )
        )
        assert len(held) == len(set(held))
        assert not RolloutNode.objects.filter(holds_node=True).exclude(rollout__state__in=ACTIVE_STATES).exists()
        upgrades = NodeLog.objects.filter(event="upgrade_started", source="rollout").count()
        assert upgrades == RolloutNode.objects.filter(command_id__isnull=False).count()
        for rollout in Rollout.objects.all():
            assert rollout.current_batch <= rollout.batches

    @invariant()
    def a_rollout_row_waits_only_on_an_open_command(self):
        waiting = RolloutNode.objects.filter(status="upgrading").values_list("command_id", flat=True)
        statuses = set(Command.objects.filter(pk__in=list(waiting)).values_list("status", flat=True))
        assert statuses <= {*OPEN_STATUSES, "superseded"}  # superseded rows are let go on the next tick

    @invariant()
    def every_rollout_that_waits_has_a_way_forward(self):
        """Each rollout running, or with a row upgrading (whatever its state), has an advance
        queued or is one the workers' sweep re-enqueues; every upgrading row has the time its
        deadline counts from; rows upgrade only in their rollout's current batch."""
        swept = {str(pk) for pk in Rollout.objects.filter(ticking()).values_list("pk", flat=True)}
        missing = self._needing_ticks() - self._queued_advances() - swept
        assert not missing, missing
        assert not RolloutNode.objects.filter(status="upgrading", upgraded_at__isnull=True).exists()
        assert not RolloutNode.objects.filter(status="upgrading").exclude(batch=F("rollout__current_batch")).exists()

    @invariant()
    def the_audit_reports_exactly_the_injected_drift(self):
        findings = {(f.host_id, f.field): f.recorded - f.expected for f in host_counter_findings()}
        assert findings == self.injected


@pytest.mark.django_db
def test_counters_always_equal_the_sum_of_their_nodes_but_for_injected_drift():
    run_state_machine_as_test(
        Fleet,
        settings=settings(
            max_examples=30,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
