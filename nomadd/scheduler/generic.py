"""The service and batch scheduler (Nomad's GenericScheduler)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable

from nomadd.scheduler.base import Attempt, BaseScheduler
from nomadd.scheduler.context import (
    ALLOC_RESCHEDULED,
    ALLOC_UPDATING,
    PlanBuilder,
    allocated_resources,
)
from nomadd.scheduler.deployments import Rollout
from nomadd.scheduler.feasible import GroupChecker
from nomadd.scheduler.ports import group_ask, with_ports
from nomadd.scheduler.protocols import Planner, State
from nomadd.scheduler.rank import NodeUsage, Stack
from nomadd.scheduler.reconcile import Placement, Reconciled, Stop, reconcile, reschedule_tracker
from nomadd.structs.alloc import Allocation, AllocClientStatus
from nomadd.structs.eval import EvalStatus, EvalTrigger, Evaluation
from nomadd.structs.job import Job
from nomadd.structs.network import PortAsk
from nomadd.structs.resources import AllocatedResources
from nomadd.structs.timeutil import NS_PER_S, format_time

__all__ = ["BatchScheduler", "GenericScheduler", "ServiceScheduler"]

FOLLOWUP_BATCH_WINDOW_NS = 5 * NS_PER_S  # failed allocs due within 5 s share one follow-up eval
# Stops that only make sense if the replacement is placed (lost/migrating ones stop regardless).
_UNDOABLE_STOPS = frozenset({ALLOC_UPDATING, ALLOC_RESCHEDULED})
# Placing yields to the event loop after this much work (checked every YIELD_CHECK_EVERY
# placements), so HTTP and Raft keep answering while a big job is scheduled.
YIELD_EVERY_S = 0.02
YIELD_CHECK_EVERY = 16
_NO_PENALTY: frozenset[str] = frozenset()


class GenericScheduler(BaseScheduler):
    batch = False

    def __init__(
        self,
        state: State,
        planner: Planner,
        *,
        seed: int | None = None,
        new_id: Callable[[], str] | None = None,
        now_ns: Callable[[], int] | None = None,
    ) -> None:
        super().__init__(state, planner, seed=seed, new_id=new_id, now_ns=now_ns)

    async def attempt(self, evaluation: Evaluation) -> Attempt:
        state = self.state
        snapshot = state.latest_index()
        job = state.job_by_id(evaluation.namespace, evaluation.job_id)
        allocs = state.allocs_by_job(evaluation.namespace, evaluation.job_id)
        now = self.env.now_ns()
        latest = state.latest_deployment(evaluation.namespace, evaluation.job_id)
        rollout = Rollout(job, allocs, latest, self.env.new_id, now)
        rec = reconcile(job, rollout.allocs, state.node_by_id, now, batch=self.batch)
        plan = PlanBuilder(evaluation.id, job, self.env)
        rollout.apply(rec, plan)
        # Stops of allocations being replaced by a new version or rescheduled wait for their
        # replacement's placement: if it cannot be placed, the old one stays (and its room too).
        deferred: dict[str, Stop] = {}
        for stop in rec.stop:
            if stop.description in _UNDOABLE_STOPS:
                deferred[stop.alloc.id] = stop
            else:
                plan.stop(stop.alloc, stop.description, stop.client_status)
        result = Attempt(done=True, job=job, snapshot_index=snapshot)
        if rollout.deployment is not None:
            result.deployment_id = rollout.deployment.id
        if job is not None and not job.stop:
            result.queued = {tg.name: 0 for tg in job.task_groups}
            for alloc in rec.inplace:
                plan.update_in_place(alloc, job)
            await self._followups(evaluation, job, rec, plan)
            if rec.place or rec.new:
                await self._place(job, rec, plan, result, deferred, rollout)
        for stop in deferred.values():  # (none left unless a group vanished mid-way)
            plan.stop(stop.alloc, stop.description, stop.client_status)
        refresh = await self.submit(plan, snapshot)
        if refresh:
            return Attempt(done=False, refresh_index=refresh, queued=result.queued)
        return result

    async def _followups(self, evaluation: Evaluation, job: Job, rec: Reconciled, plan: PlanBuilder) -> None:
        """Follow-up evals for failed allocations to replace after their reschedule delay."""
        if not rec.followups:
            return
        pending = sorted(rec.followups, key=lambda item: item[1])
        batch_start = -1
        eval_id = ""
        for alloc, when in pending:
            if batch_start < 0 or when - batch_start > FOLLOWUP_BATCH_WINDOW_NS:
                batch_start = when
                now = self.env.now_ns()
                followup = Evaluation(
                    id=self.env.new_id(),
                    namespace=job.namespace,
                    priority=job.priority,
                    type=str(job.type),
                    triggered_by=_followup_trigger(alloc),
                    job_id=job.id,
                    job_modify_index=job.job_modify_index,
                    status=EvalStatus.PENDING,
                    wait_until=format_time(when),
                    previous_eval=evaluation.id,
                    create_time=now,
                    modify_time=now,
                )
                await self.planner.create_eval(followup)
                eval_id = followup.id
            plan.node_allocation.setdefault(alloc.node_id, []).append(
                dataclasses.replace(alloc, job=None, follow_up_eval_id=eval_id)
            )

    async def _place(
        self,
        job: Job,
        rec: Reconciled,
        plan: PlanBuilder,
        result: Attempt,
        deferred: dict[str, Stop],
        rollout: Rollout,
    ) -> None:
        """Place replacements, then each group's new allocations. After a group's first failure
        the rest of it is coalesced into that failure's metric (``CoalescedFailures``) without
        being drawn: an unplaceable count of 10^9 costs what a count of 10 does. Every
        ``YIELD_EVERY_S`` of work the loop gets a turn, so the agent keeps answering."""
        state = self.state
        usage = NodeUsage(state, plan, state.allocs_by_job(job.namespace, job.id))
        nodes = state.nodes()  # a server's state hands a cached tuple: no walk per evaluation
        seq = nodes if isinstance(nodes, tuple) else list(nodes)
        stack = Stack(job, seq, usage, batch=self.batch, rng=self.env.rng)
        checkers: dict[str, GroupChecker] = {}
        asks: dict[str, tuple[int, int, int]] = {}
        resources: dict[str, AllocatedResources] = {}
        port_asks: dict[str, PortAsk | None] = {}
        failed = result.failed_tg_allocs
        now = self.env.now_ns()

        def place_one(placement: Placement) -> None:
            group = placement.group
            tg = job.lookup_task_group(group)
            if tg is None:
                return
            previous = placement.previous
            pending = deferred.pop(previous.id, None) if previous is not None else None
            if group in failed:  # coalesce: the same ask fails the same way
                _coalesce(result, group, 1)
                return
            checker = checkers.get(group)
            if checker is None:
                checker = checkers[group] = GroupChecker(job, tg)
                asks[group] = tg.resources()
                resources[group] = allocated_resources(tg)
                port_asks[group] = group_ask(tg) or None  # None: no PortAsk.__bool__ per select
            freed = None
            if pending is not None:
                freed = plan.stop(pending.alloc, pending.description, pending.client_status)
                if freed is not None:
                    usage.release(pending.alloc.node_id, group, freed)
            penalty = (
                frozenset({previous.node_id})
                if placement.reschedule and previous is not None
                else _NO_PENALTY
            )
            selection = stack.select(group, checker, asks[group], tg.count, penalty, ports=port_asks[group])
            if selection.node is None:
                failed[group] = selection.metric
                result.queued[group] += 1
                if pending is not None:
                    plan.unstop(pending.alloc.id, pending.alloc.node_id)
                    if freed is not None:
                        usage.restore(pending.alloc.node_id, group, freed)
                return
            tracker = None
            if previous is not None:
                tracker = previous.reschedule_tracker
                if placement.reschedule:
                    delay = 0
                    if tg.reschedule_policy is not None:
                        delay = tg.reschedule_policy.delay
                    tracker = reschedule_tracker(previous, now, delay)
            plan.place(
                job=job,
                tg=tg,
                name=placement.name,
                node_id=selection.node.id,
                node_name=selection.node.name,
                resources=with_ports(tg, resources[group], selection.ports),
                metrics=selection.metric,
                previous=previous,
                tracker=tracker,
                deployment_id=rollout.deployment_for(group),
                canary=placement.canary,
            )

        loop_turn = time.monotonic() + YIELD_EVERY_S
        done = 0
        for placement in rec.place:
            place_one(placement)
            done += 1
            if done % YIELD_CHECK_EVERY == 0 and time.monotonic() > loop_turn:
                await asyncio.sleep(0)
                loop_turn = time.monotonic() + YIELD_EVERY_S
        for new in rec.new:
            for drawn, placement in enumerate(new):
                if new.group in failed:
                    _coalesce(result, new.group, new.count - drawn)
                    break
                place_one(placement)
                done += 1
                if done % YIELD_CHECK_EVERY == 0 and time.monotonic() > loop_turn:
                    await asyncio.sleep(0)
                    loop_turn = time.monotonic() + YIELD_EVERY_S
        for checker in checkers.values():
            result.class_eligibility.update(checker.class_eligibility())
        result.escaped = any(c.escaped for c in checkers.values())


def _followup_trigger(alloc: Allocation) -> EvalTrigger:
    """Marked ``unknown`` (disconnected node): the window's end; otherwise a reschedule delay."""
    if alloc.client_status == AllocClientStatus.UNKNOWN:
        return EvalTrigger.MAX_DISCONNECT_TIMEOUT
    return EvalTrigger.ALLOC_FAILURE


def _coalesce(result: Attempt, group: str, n: int) -> None:
    """Count ``n`` more unplaced allocations of ``group`` into its existing failure metric."""
    metric = result.failed_tg_allocs[group]
    result.failed_tg_allocs[group] = dataclasses.replace(
        metric, coalesced_failures=metric.coalesced_failures + n
    )
    result.queued[group] += n


class ServiceScheduler(GenericScheduler):
    batch = False
    max_attempts = 5  # Nomad's maxServiceScheduleAttempts


class BatchScheduler(GenericScheduler):
    batch = True
    max_attempts = 2  # Nomad's maxBatchScheduleAttempts
