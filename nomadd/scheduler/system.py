"""The system scheduler: one allocation of each task group on every feasible ready node.

A node that becomes ready later gets its allocation when the servers create a ``node-update``
evaluation for the system jobs of its datacenter (Nomad's createNodeEvals); every evaluation
reconciles all nodes, so any trigger converges. Allocations on down nodes are marked lost and
not replaced elsewhere; on ineligible or no longer feasible nodes they are stopped, and on a
draining node once the drainer marks them (``DesiredTransition.Migrate``: system jobs go last,
never when the drain ignores them). Failed or completed allocations are not replaced
(the client's restart policy governs restarts), as Nomad's system scheduler does.

``sysbatch`` jobs (:class:`SysBatchScheduler`) run the same way to completion: a node whose
allocation of the current version finished is done; a new job version runs there again.

A destructive update under the job's ``update {}`` with ``max_parallel`` and ``stagger`` both
set (Nomad's ``UpdateStrategy.Rolling``) replaces at most ``max_parallel`` allocations per
evaluation and leaves the rest on the old version; the evaluation then creates a
``rolling-update`` follow-up that waits ``stagger`` and goes on (Nomad's system scheduler with
``evictAndPlace``'s limit and ``NextRollingEval``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from nomadd.scheduler.base import Attempt, BaseScheduler
from nomadd.scheduler.context import (
    ALLOC_LOST,
    ALLOC_NODE_TAINTED,
    ALLOC_NOT_NEEDED,
    ALLOC_REPLACED,
    ALLOC_UPDATING,
    PlanBuilder,
    allocated_resources,
)
from nomadd.scheduler.feasible import GroupChecker, ready_nodes_in
from nomadd.scheduler.ports import group_ask, with_ports
from nomadd.scheduler.rank import NodeUsage, Stack
from nomadd.scheduler.reconcile import tasks_updated
from nomadd.structs.alloc import Allocation, AllocClientStatus, AllocDesiredStatus, alloc_name
from nomadd.structs.eval import EvalStatus, EvalTrigger, Evaluation
from nomadd.structs.job import Job, TaskGroup
from nomadd.structs.node import Node, NodeStatus
from nomadd.structs.timeutil import format_time

__all__ = ["SysBatchScheduler", "SystemScheduler"]


def _needs_update(alloc: Allocation, job: Job) -> bool:
    if alloc.job is not None:
        return alloc.job is not job and alloc.job.job_modify_index != job.job_modify_index
    return alloc.job_version != job.version


def _update_limit(job: Job, destructive: int) -> int:
    """How many destructive updates one evaluation may make (Nomad's rolling limit)."""
    u = job.update
    if job.stop or u is None or u.stagger <= 0 or u.max_parallel <= 0:
        return destructive
    return u.max_parallel


class SystemScheduler(BaseScheduler):
    max_attempts = 5  # Nomad's maxSystemScheduleAttempts
    creates_blocked_evals = False
    _rolling: dict[str, str]  # evaluation ID -> its rolling-update follow-up's ID

    async def process(self, evaluation: Evaluation) -> None:
        self._rolling = {}
        await super().process(evaluation)

    async def attempt(self, evaluation: Evaluation) -> Attempt:
        state = self.state
        snapshot = state.latest_index()
        job = state.job_by_id(evaluation.namespace, evaluation.job_id)
        allocs = state.allocs_by_job(evaluation.namespace, evaluation.job_id)
        plan = PlanBuilder(evaluation.id, job, self.env)
        result = Attempt(done=True, job=job, snapshot_index=snapshot)
        live = [a for a in allocs if a.desired_status == AllocDesiredStatus.RUN and not a.client_terminal()]
        if job is None or job.stop:
            for alloc in live:
                node = state.node_by_id(alloc.node_id)
                if node is None or node.status in (NodeStatus.DOWN, NodeStatus.DISCONNECTED):
                    plan.stop(alloc, ALLOC_LOST, AllocClientStatus.LOST)
                else:
                    plan.stop(alloc, ALLOC_NOT_NEEDED)
        else:
            held = self._reconcile(job, allocs, live, plan, result)
            if held and job.update is not None:
                result.next_eval = await self._next_rolling_eval(evaluation, job.update.stagger)
        refresh = await self.submit(plan, snapshot)
        if refresh:
            return Attempt(done=False, refresh_index=refresh, queued=result.queued)
        return result

    def _reconcile(
        self,
        job: Job,
        allocs: Sequence[Allocation],
        live: list[Allocation],
        plan: PlanBuilder,
        result: Attempt,
    ) -> bool:
        """Plan the job's allocations; True when the update limit held some back."""
        state = self.state
        ready, _ = ready_nodes_in(job, state.nodes())
        ready_ids = {n.id: n for n in ready}
        groups = {tg.name: tg for tg in job.task_groups}
        checkers = {name: GroupChecker(job, tg) for name, tg in groups.items()}
        result.queued = {name: 0 for name in groups}
        settled = self._settled(job, allocs)
        kept: set[tuple[str, str]] = set()
        replace_on: list[tuple[Node, TaskGroup, Allocation]] = []
        destructive: list[tuple[Node, TaskGroup, Allocation]] = []
        for alloc in sorted(live, key=lambda a: (a.create_index, a.id)):
            tg = groups.get(alloc.task_group)
            node = state.node_by_id(alloc.node_id)
            key = (alloc.node_id, alloc.task_group)
            if node is None or node.status in (NodeStatus.DOWN, NodeStatus.DISCONNECTED):
                plan.stop(alloc, ALLOC_LOST, AllocClientStatus.LOST)
            elif tg is None or tg.count == 0 or key in kept:
                plan.stop(alloc, ALLOC_NOT_NEEDED)
            elif alloc.next_allocation:
                plan.stop(alloc, ALLOC_REPLACED)
            elif not self._may_stay(alloc, node, ready_ids, checkers[tg.name]):
                plan.stop(alloc, ALLOC_NODE_TAINTED)
            else:
                kept.add(key)
                if not _needs_update(alloc, job):
                    continue
                old_tg = alloc.job.lookup_task_group(tg.name) if alloc.job is not None else None
                if (
                    alloc.job is not None
                    and old_tg is not None
                    and not tasks_updated(alloc.job, old_tg, job, tg)
                ):
                    plan.update_in_place(alloc, job)
                else:
                    destructive.append((node, tg, alloc))
        limit = _update_limit(job, len(destructive))
        for node, tg, alloc in destructive[:limit]:
            plan.stop(alloc, ALLOC_UPDATING)
            replace_on.append((node, tg, alloc))
        usage = NodeUsage(state, plan, allocs)
        stack = Stack(job, ready, usage, batch=False)
        for node, tg, previous in replace_on:
            self._place_one(job, tg, node, stack, checkers[tg.name], plan, result, previous)
        for node in ready:
            for tg in job.task_groups:
                key = (node.id, tg.name)
                if tg.count == 0 or key in kept or key in settled:
                    continue
                self._place_one(job, tg, node, stack, checkers[tg.name], plan, result, None)
        for checker in checkers.values():
            result.class_eligibility.update(checker.class_eligibility())
        return len(destructive) > limit

    async def _next_rolling_eval(self, evaluation: Evaluation, stagger_ns: int) -> str:
        """The follow-up that goes on with the update after ``stagger`` (once per evaluation:
        a retried attempt reuses it, as Nomad's ``nextEval``)."""
        if evaluation.id in self._rolling:
            return self._rolling[evaluation.id]
        now = self.env.now_ns()
        follow = Evaluation(
            id=self.env.new_id(),
            namespace=evaluation.namespace,
            priority=evaluation.priority,
            type=evaluation.type,
            triggered_by=EvalTrigger.ROLLING_UPDATE,
            job_id=evaluation.job_id,
            job_modify_index=evaluation.job_modify_index,
            status=EvalStatus.PENDING,
            wait=stagger_ns,
            wait_until=format_time(now + stagger_ns),
            previous_eval=evaluation.id,
            create_time=now,
            modify_time=now,
        )
        await self.planner.create_eval(follow)
        self._rolling[evaluation.id] = follow.id
        return follow.id

    def _settled(self, job: Job, allocs: Sequence[Allocation]) -> set[tuple[str, str]]:
        """Which (node, group) already has a terminal-but-kept allocation (failed/complete)."""
        return {
            (a.node_id, a.task_group)
            for a in allocs
            if a.desired_status == AllocDesiredStatus.RUN and a.client_terminal()
        }

    @staticmethod
    def _may_stay(alloc: Allocation, node: Node, ready_ids: dict[str, Node], checker: GroupChecker) -> bool:
        """A running system allocation stays on a ready, feasible node, and on a draining node
        until the drainer marks it."""
        if node.drain_strategy is not None:
            return not alloc.desired_transition.migrate
        return node.id in ready_ids and checker.feasible(node)

    def _place_one(
        self,
        job: Job,
        tg: TaskGroup,
        node: Node,
        stack: Stack,
        checker: GroupChecker,
        plan: PlanBuilder,
        result: Attempt,
        previous: Allocation | None,
    ) -> None:
        if previous is None and not checker.feasible(node):
            return  # not a failure: the job simply does not run on this node
        selection = stack.select(tg.name, checker, tg.resources(), 1, only=node, ports=group_ask(tg))
        if selection.node is None:
            failed = result.failed_tg_allocs
            if tg.name in failed:
                metric = failed[tg.name]
                failed[tg.name] = dataclasses.replace(
                    metric,
                    coalesced_failures=metric.coalesced_failures + 1,
                    nodes_evaluated=metric.nodes_evaluated + 1,
                    nodes_exhausted=metric.nodes_exhausted + selection.metric.nodes_exhausted,
                )
            else:
                failed[tg.name] = selection.metric
            result.queued[tg.name] += 1
            if previous is not None:  # keep the old version rather than nothing
                freed = plan.unstop(previous.id, previous.node_id)
                if freed is not None:
                    stack.usage.restore(previous.node_id, tg.name, freed)
            return
        plan.place(
            job=job,
            tg=tg,
            name=alloc_name(job.id, tg.name, 0),
            node_id=node.id,
            node_name=node.name,
            resources=with_ports(tg, allocated_resources(tg), selection.ports),
            metrics=selection.metric,
            previous=previous,
        )


class SysBatchScheduler(SystemScheduler):
    """``sysbatch`` jobs: on every feasible node like system jobs, to completion like batch ones.
    A node's finished (or failed) allocation of the current job version is left alone; one of an
    earlier version is run again with the new version (Nomad's reconcile_node)."""

    def _settled(self, job: Job, allocs: Sequence[Allocation]) -> set[tuple[str, str]]:
        finished = [a for a in allocs if a.desired_status == AllocDesiredStatus.RUN and a.client_terminal()]
        return {(a.node_id, a.task_group) for a in finished if not _needs_update(a, job)}
