"""The leader's deployment watcher (Nomad's ``nomad/deploymentwatcher``).

While this server leads, every :data:`WATCH_INTERVAL_S` it looks at the running deployments
and proposes, in one ``DEPLOYMENT_UPDATE`` entry each, what their allocations' health says:

* an allocation turned healthy or unhealthy since last time: a ``deployment-watcher``
  evaluation, so the scheduler places the next ``max_parallel`` batch;
* a group has an unhealthy allocation, or passed its ``RequireProgressBy``: the deployment
  **fails**; with ``auto_revert`` the job's latest stable version is registered again (a new
  version, as Nomad's revert) with its evaluation;
* every canary of an ``auto_promote`` deployment is healthy: it is **promoted**;
* every group has its ``DesiredTotal`` healthy (and its canaries promoted): it is
  **successful**, and the job version is marked stable.

:func:`fail_entry` is shared with ``Deployment.Fail``. A new leader has seen nothing yet, so
its first look makes one evaluation per running deployment (harmless: a no-op plan at worst).
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid

from nomadd.server.context import ServerContext
from nomadd.server.periodic import PeriodicLeaderTask
from nomadd.server.state import store_allocs, store_deployments, store_jobs
from nomadd.server.state.store import KeptRows, StateSnapshot, kept_rows
from nomadd.structs.deployment import (
    DESC_FAILED_ALLOCS,
    DESC_PROGRESS_DEADLINE,
    DESC_RUNNING,
    DESC_SUCCESSFUL,
    Deployment,
    DeploymentStatus,
    DeploymentStatusUpdate,
)
from nomadd.structs.eval import EvalStatus, EvalTrigger, Evaluation
from nomadd.structs.job import Job
from nomadd.structs.messages import MessageType
from nomadd.structs.requests.deployment import DeploymentPromote, DeploymentUpdateEntry, JobStable
from nomadd.structs.timeutil import parse_time

__all__ = [
    "WATCH_INTERVAL_S",
    "DeploymentWatcher",
    "deployment_eval",
    "fail_entry",
    "healthy_canaries",
    "status_update",
]

logger = logging.getLogger(__name__)

WATCH_INTERVAL_S = 0.2


def deployment_eval(d: Deployment, job: Job | None, now_ns: int) -> Evaluation:
    return Evaluation(
        id=str(uuid.uuid4()),
        namespace=d.namespace,
        priority=job.priority if job is not None else d.eval_priority,
        type=str(job.type) if job is not None else "service",
        triggered_by=EvalTrigger.DEPLOYMENT_WATCHER,
        job_id=d.job_id,
        job_modify_index=job.job_modify_index if job is not None else 0,
        deployment_id=d.id,
        status=EvalStatus.PENDING,
        create_time=now_ns,
        modify_time=now_ns,
    )


def status_update(d: Deployment, status: DeploymentStatus, description: str) -> DeploymentStatusUpdate:
    return DeploymentStatusUpdate(deployment_id=d.id, status=status, status_description=description)


def _stable_version(snap: StateSnapshot, d: Deployment) -> Job | None:
    """The latest stable version older than the deployment's (what auto-revert goes back to)."""
    for v in store_jobs.job_versions(snap, d.namespace, d.job_id):  # newest first
        if v.version < d.job_version and v.stable:
            return v
    return None


def fail_entry(
    snap: StateSnapshot, d: Deployment, description: str, now_ns: int, *, revert: bool
) -> tuple[DeploymentUpdateEntry, int | None]:
    """Mark ``d`` failed; with ``revert`` (and a stable version to go to) roll the job back.

    Returns the entry and the job version reverted to (None: no rollback)."""
    job = store_jobs.get_job(snap, d.namespace, d.job_id)
    target = _stable_version(snap, d) if revert and job is not None and job.version == d.job_version else None
    rollback: Job | None = None
    if revert and target is None:
        description += " - no stable job version to auto revert to"
    elif target is not None and job is not None:
        description += f" - rolling back to job version {target.version}"
        rollback = dataclasses.replace(target, stop=False, stable=False, version=job.version)
    entry = DeploymentUpdateEntry(
        status_updates=(status_update(d, DeploymentStatus.FAILED, description),),
        job=rollback,
        evals=(deployment_eval(d, job, now_ns),),
        time_ns=now_ns,
    )
    return entry, target.version if target is not None else None


def healthy_canaries(snap: StateSnapshot, d: Deployment, group: str) -> int:
    return sum(
        1
        for a in store_allocs.allocs_by_job(snap, d.namespace, d.job_id)
        if a.deployment_id == d.id
        and a.task_group == group
        and a.deployment_status is not None
        and a.deployment_status.canary
        and a.deployment_status.healthy is True
        and not a.terminal()
    )


def _is_running(d: Deployment) -> bool:
    return d.status == DeploymentStatus.RUNNING


class DeploymentWatcher(PeriodicLeaderTask):
    name = "deployment-watcher"

    def __init__(self, ctx: ServerContext) -> None:
        super().__init__()
        self._ctx = ctx
        self._seen: dict[str, int] = {}  # deployment ID -> health reports counted last time
        # the running deployments by ID, kept from the deployments written since the last tick:
        # a tick costs O(running + changed), not a scan of every deployment ever kept
        self._running: KeptRows[Deployment] | None = None

    def interval_s(self) -> float:
        return WATCH_INTERVAL_S

    def set_enabled(self, enabled: bool) -> None:
        self._seen = {}
        self._running = kept_rows(
            self._running, enabled, self._ctx.store, store_deployments.TABLE, _is_running
        )
        super().set_enabled(enabled)

    async def tick(self) -> object:
        assert self._running is not None
        snap = self._running.take()
        running = list(self._running.rows.values())
        ids = set(self._running.rows)
        self._seen = {k: v for k, v in self._seen.items() if k in ids}
        for d in running:
            entry = self.decide(snap, d, time.time_ns())
            if entry is not None:
                await self._ctx.propose(MessageType.DEPLOYMENT_UPDATE, entry)
        return None

    def decide(self, snap: StateSnapshot, d: Deployment, now: int) -> DeploymentUpdateEntry | None:
        """What to commit about ``d`` now (None: nothing changed)."""
        job = store_jobs.get_job(snap, d.namespace, d.job_id)
        groups = d.task_groups
        if any(s.unhealthy_allocs > 0 for s in groups.values()):
            revert = any(s.auto_revert for s in groups.values())
            entry, version = fail_entry(snap, d, DESC_FAILED_ALLOCS, now, revert=revert)
            logger.info("deployment failed deployment_id=%s reverted_to=%s", d.id, version)
            return entry
        for s in groups.values():
            by = parse_time(s.require_progress_by)
            complete = s.healthy_allocs >= s.desired_total and (s.desired_canaries == 0 or s.promoted)
            if s.progress_deadline and by and now > by and not complete:
                revert = any(g.auto_revert for g in groups.values())
                entry, version = fail_entry(snap, d, DESC_PROGRESS_DEADLINE, now, revert=revert)
                logger.info("deployment missed progress deadline deployment_id=%s", d.id)
                return entry
        canaries_healthy = all(
            healthy_canaries(snap, d, name) >= s.desired_canaries
            for name, s in groups.items()
            if s.desired_canaries > 0
        )
        if d.requires_promotion() and d.has_auto_promote() and canaries_healthy:
            logger.info("deployment auto-promoted deployment_id=%s", d.id)
            return DeploymentUpdateEntry(
                promotions=(DeploymentPromote(deployment_id=d.id, all=True),),
                status_updates=(status_update(d, DeploymentStatus.RUNNING, DESC_RUNNING),),
                evals=(deployment_eval(d, job, now),),
                time_ns=now,
            )
        if all(
            s.healthy_allocs >= s.desired_total and (s.desired_canaries == 0 or s.promoted)
            for s in groups.values()
        ):
            logger.info("deployment successful deployment_id=%s job_version=%d", d.id, d.job_version)
            return DeploymentUpdateEntry(
                status_updates=(status_update(d, DeploymentStatus.SUCCESSFUL, DESC_SUCCESSFUL),),
                stable=(JobStable(namespace=d.namespace, job_id=d.job_id, version=d.job_version),),
                time_ns=now,
            )
        reports = sum(s.healthy_allocs + s.unhealthy_allocs for s in groups.values())
        if self._seen.get(d.id) == reports:
            return None
        self._seen[d.id] = reports
        return DeploymentUpdateEntry(evals=(deployment_eval(d, job, now),), time_ns=now)
