"""Deployments in the service scheduler (the deployment half of Nomad's reconciler).

:class:`Rollout` wraps :func:`~nomadd.scheduler.reconcile.reconcile` for a service job whose
groups have an ``update {}`` strategy:

* **before** reconciling it takes the canaries of an unpromoted deployment out of the
  allocations (they run beside the old version and hold no name of the count), and, once the
  deployment is promoted, the old allocation each canary stands in for (stopped: the canary
  took its place);
* **after** reconciling it cancels an active deployment of an older job version, creates the
  deployment of this version when a group changes destructively (or is placed for the first
  time), turns the destructive updates of a group that needs canaries into canary placements,
  and limits the destructive updates of every group to ``max_parallel`` minus the deployment's
  allocations that are not healthy yet. The updates left out are untouched: the old allocations
  keep running until a later evaluation (the deployment watcher makes one when an allocation's
  health is reported) replaces them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from nomadd.scheduler.context import ALLOC_NOT_NEEDED, ALLOC_UPDATING, PlanBuilder
from nomadd.scheduler.reconcile import Placement, Reconciled, Stop
from nomadd.structs.alloc import Allocation, AllocClientStatus
from nomadd.structs.deployment import (
    DESC_NEEDS_PROMOTION,
    DESC_NEWER_JOB,
    DESC_RUNNING,
    DESC_STOPPED_JOB,
    AllocDeploymentStatus,
    Deployment,
    DeploymentState,
    DeploymentStatus,
    DeploymentStatusUpdate,
)
from nomadd.structs.job import Job, JobType, TaskGroup
from nomadd.structs.timeutil import format_time

__all__ = ["Rollout"]


def _strategy_groups(job: Job | None) -> dict[str, TaskGroup]:
    if job is None or job.stop or job.type != JobType.SERVICE:
        return {}
    return {tg.name: tg for tg in job.task_groups if tg.update is not None and tg.update.max_parallel > 0}


def _is_canary(alloc: Allocation) -> bool:
    return alloc.deployment_status is not None and alloc.deployment_status.canary


def _healthy(alloc: Allocation) -> bool:
    return alloc.deployment_status is not None and alloc.deployment_status.healthy is True


class Rollout:
    """One evaluation's deployment decisions; see the module docstring."""

    def __init__(
        self,
        job: Job | None,
        allocs: Sequence[Allocation],
        latest: Deployment | None,
        new_id: Callable[[], str],
        now_ns: int,
    ) -> None:
        self.job = job
        self._new_id = new_id
        self._now = now_ns
        self._groups = _strategy_groups(job)
        self._cancel: DeploymentStatusUpdate | None = None
        self.deployment: Deployment | None = None
        self.created = False
        if latest is not None:
            same_job = job is not None and latest.job_create_index in (0, job.create_index)
            current = same_job and job is not None and not job.stop and latest.job_version == job.version
            if current:
                self.deployment = latest  # running, paused, failed or successful: it governs this version
            elif latest.active():
                stopped = job is None or job.stop
                self._cancel = DeploymentStatusUpdate(
                    deployment_id=latest.id,
                    status=DeploymentStatus.CANCELLED,
                    status_description=DESC_STOPPED_JOB if stopped else DESC_NEWER_JOB,
                    updated_at=now_ns,
                )
        self.allocs: Sequence[Allocation] = allocs  # what reconcile sees (as given: no copy)
        self._canaries: dict[str, list[Allocation]] = {}
        self._stops: list[Stop] = []
        if self.deployment is not None and any(
            s.desired_canaries for s in self.deployment.task_groups.values()
        ):
            self._split(allocs)

    # ---- before reconcile ----------------------------------------------------------------
    def _state(self, group: str) -> DeploymentState | None:
        d = self.deployment
        return d.task_groups.get(group) if d is not None else None

    def _split(self, allocs: Sequence[Allocation]) -> None:
        d = self.deployment
        canaries: dict[str, list[Allocation]] = {}
        for a in allocs:
            if d is not None and a.deployment_id == d.id and _is_canary(a) and not a.terminal():
                canaries.setdefault(a.task_group, []).append(a)
        self._canaries = canaries
        hidden: set[str] = set()
        for group, items in canaries.items():
            state = self._state(group)
            if state is None or not state.promoted:
                hidden.update(a.id for a in items)  # beside the old version, outside the count
                continue
            names = {a.name for a in items}
            for a in allocs:  # promoted: the old allocation of each canary's name goes
                old = a.task_group == group and a.name in names and d is not None and a.deployment_id != d.id
                if old and a.id not in hidden and not a.terminal():
                    hidden.add(a.id)
                    self._stops.append(Stop(alloc=a, description=ALLOC_NOT_NEEDED))
        if hidden:
            self.allocs = [a for a in allocs if a.id not in hidden]

    # ---- after reconcile -----------------------------------------------------------------
    def apply(self, rec: Reconciled, plan: PlanBuilder) -> None:
        if self._cancel is not None:
            plan.deployment_updates.append(self._cancel)
        rec.stop.extend(self._stops)
        job = self.job
        if job is None or not self._groups:
            return
        updating = {s.alloc.id for s in rec.stop if s.description == ALLOC_UPDATING}
        destructive: dict[str, list[Placement]] = {}
        for p in rec.place:
            if p.previous is not None and p.previous.id in updating:
                destructive.setdefault(p.group, []).append(p)
        if self.deployment is None:
            self._create(job, rec, destructive, plan)
        d = self.deployment
        if d is None:
            return
        rec.inplace = [self._join(a, d) for a in rec.inplace]
        for group, moves in destructive.items():
            state = d.task_groups.get(group)
            if state is None or group not in self._groups:
                continue
            keep = self._limit(group, state, d, moves)
            held = moves[keep:]
            if not held:
                continue
            held_ids = {p.previous.id for p in held if p.previous is not None}
            rec.place = [p for p in rec.place if p not in held]
            rec.stop = [s for s in rec.stop if s.alloc.id not in held_ids]
            if state.desired_canaries > 0 and not state.promoted:
                self._place_canaries(rec, group, state, held)

    def _join(self, alloc: Allocation, d: Deployment) -> Allocation:
        """An allocation updated in place joins the deployment of its new version; one that
        runs (and was not unhealthy) counts as healthy at once, as its tasks go on running."""
        if alloc.task_group not in d.task_groups or alloc.deployment_id == d.id or not d.active():
            return alloc
        was_healthy = alloc.deployment_status is None or alloc.deployment_status.healthy is True
        running = alloc.client_status == AllocClientStatus.RUNNING and was_healthy
        health = AllocDeploymentStatus(healthy=True, timestamp=format_time(self._now)) if running else None
        return dataclasses.replace(alloc, deployment_id=d.id, deployment_status=health)

    def _limit(self, group: str, state: DeploymentState, d: Deployment, moves: list[Placement]) -> int:
        """How many of ``moves`` (destructive updates) go now (Nomad's computeLimit)."""
        if d.status != DeploymentStatus.RUNNING:
            return 0  # paused or failed: no more of the new version
        if state.desired_canaries > 0 and not state.promoted:
            return 0
        tg = self._groups[group]
        assert tg.update is not None
        mine = [a for a in self.allocs if a.task_group == group and a.deployment_id == d.id]
        if any(a.deployment_status is not None and a.deployment_status.healthy is False for a in mine):
            return 0  # an unhealthy one: the watcher fails the deployment, nothing more goes
        pending = sum(1 for a in mine if not a.terminal() and not _healthy(a))
        return max(0, min(len(moves), tg.update.max_parallel - pending))

    def _place_canaries(
        self, rec: Reconciled, group: str, state: DeploymentState, held: list[Placement]
    ) -> None:
        existing = self._canaries.get(group, [])
        missing = state.desired_canaries - len(existing)
        taken = {a.name for a in existing}
        for p in held:
            if missing <= 0:
                break
            if p.name in taken:
                continue
            rec.place.append(Placement(group=group, name=p.name, canary=True))
            missing -= 1

    def _create(
        self, job: Job, rec: Reconciled, destructive: dict[str, list[Placement]], plan: PlanBuilder
    ) -> None:
        new_groups = {n.group for n in rec.new if n.count > 0}
        had_running = any(a.job_version == job.version and a.job_id == job.id for a in self.allocs)
        groups: dict[str, DeploymentState] = {}
        for name, tg in self._groups.items():
            if name not in destructive and (name not in new_groups or had_running):
                continue
            u = tg.update
            assert u is not None
            canaries = u.canary if name in destructive else 0
            groups[name] = DeploymentState(
                auto_revert=u.auto_revert,
                auto_promote=u.auto_promote,
                progress_deadline=u.progress_deadline,
                require_progress_by=format_time(self._now + u.progress_deadline)
                if u.progress_deadline
                else DeploymentState().require_progress_by,
                desired_canaries=canaries,
                desired_total=tg.count,
            )
        if not groups:
            return
        needs_promotion = any(s.desired_canaries > 0 and not s.auto_promote for s in groups.values())
        d = Deployment(
            id=self._new_id(),
            namespace=job.namespace,
            job_id=job.id,
            job_version=job.version,
            job_modify_index=job.modify_index,
            job_spec_modify_index=job.job_modify_index,
            job_create_index=job.create_index,
            task_groups=groups,
            status=DeploymentStatus.RUNNING,
            status_description=DESC_NEEDS_PROMOTION if needs_promotion else DESC_RUNNING,
            eval_priority=job.priority,
            create_time=self._now,
            modify_time=self._now,
        )
        self.deployment = d
        self.created = True
        plan.deployment = d

    def deployment_for(self, group: str) -> str:
        """The deployment ID a new allocation of ``group`` joins ("" when none)."""
        d = self.deployment
        if d is None or group not in d.task_groups or not d.active():
            return ""
        return d.id
