"""Eval, allocation and job GC (leader only; Nomad's core scheduler ``eval-gc`` / ``job-gc``).

Every ``GC_INTERVAL_S`` the leader collects, in one ``EVAL_DELETE`` entry:

* **evaluations** that are terminal and older than ``EVAL_GC_THRESHOLD_S`` (ModifyTime), when
  every allocation they placed is client-terminal; those allocations go with them;
* **jobs** that are stopped (or batch jobs that are dead) and older than ``JOB_GC_THRESHOLD_S``
  (SubmitTime), once all their evaluations are terminal and allocations client-terminal: the
  job, its versions, evaluations, allocations and deployments are removed;
* **deployments** that are terminal and older than ``server.deployment_gc_threshold``
  (ModifyTime; Nomad's 1h) and that no non-terminal allocation references (Nomad's
  ``deploymentGC``).

``System.GarbageCollect`` (``PUT /v1/system/gc``) runs it at once with zero thresholds (every
terminal deployment goes, whatever its age), as Nomad's force-gc does (the server hands this
collector to the system endpoint).
"""

from __future__ import annotations

import logging
import time

from nomadd.server.context import ServerContext
from nomadd.server.periodic import PeriodicLeaderTask
from nomadd.server.state import store_allocs, store_deployments, store_evals, store_jobs, store_summaries
from nomadd.server.state.store import StateSnapshot
from nomadd.structs.deployment import Deployment
from nomadd.structs.job import Job, JobStatus, JobType
from nomadd.structs.messages import MessageType
from nomadd.structs.requests.eval import EvalDeleteEntry, JobRef
from nomadd.structs.timeutil import NS_PER_S

logger = logging.getLogger(__name__)

__all__ = [
    "DEPLOYMENT_GC_THRESHOLD_S",
    "EVAL_GC_THRESHOLD_S",
    "GC_INTERVAL_S",
    "JOB_GC_THRESHOLD_S",
    "JobGC",
    "plan_gc",
]

GC_INTERVAL_S = 300.0  # Nomad's core GC cadence (eval_gc_interval / job_gc_interval: 5m)
EVAL_GC_THRESHOLD_S = 3600.0  # Nomad's eval_gc_threshold: 1h
JOB_GC_THRESHOLD_S = 4 * 3600.0  # Nomad's job_gc_threshold: 4h
DEPLOYMENT_GC_THRESHOLD_S = 3600.0  # Nomad's deployment_gc_threshold: 1h


def plan_gc(
    snap: StateSnapshot,
    now_ns: int,
    eval_threshold_s: float,
    job_threshold_s: float,
    deployment_threshold_s: float = DEPLOYMENT_GC_THRESHOLD_S,
) -> EvalDeleteEntry:
    """What to delete, as the ``EVAL_DELETE`` entry that deletes it."""
    evals: list[str] = []
    allocs: list[str] = []
    jobs: list[JobRef] = []
    job_cut = now_ns - int(job_threshold_s * NS_PER_S)
    eval_cut = now_ns - int(eval_threshold_s * NS_PER_S)
    deployments: list[str] = []
    purged: set[tuple[str, str]] = set()

    def old_finished(job: Job) -> bool:  # cheap tests first, before list_jobs sorts
        finished = job.stop or job.type in (JobType.BATCH, JobType.SYSBATCH)
        return finished and job.submit_time <= job_cut

    for job in store_jobs.list_jobs(snap, where=old_finished):
        if store_summaries.job_status(snap, job) != JobStatus.DEAD:
            continue
        job_allocs = store_allocs.allocs_by_job(snap, job.namespace, job.id)
        job_evals = store_evals.evals_by_job(snap, job.namespace, job.id)
        if any(not a.client_terminal() for a in job_allocs) or any(not e.terminal() for e in job_evals):
            continue
        purged.add((job.namespace, job.id))
        jobs.append(JobRef(namespace=job.namespace, job_id=job.id))
        evals += [e.id for e in job_evals]
        allocs += [a.id for a in job_allocs]
        deployments += [d.id for d in store_deployments.deployments_by_job(snap, job.namespace, job.id)]
    deployments += _old_deployments(snap, purged, now_ns - int(deployment_threshold_s * NS_PER_S))
    for ev in store_evals.list_evals(snap, where=lambda e: e.terminal() and e.modify_time <= eval_cut):
        if (ev.namespace, ev.job_id) in purged:
            continue
        placed = [a for a in store_allocs.allocs_by_job(snap, ev.namespace, ev.job_id) if a.eval_id == ev.id]
        if any(not a.client_terminal() for a in placed):
            continue
        evals.append(ev.id)
        allocs += [a.id for a in placed]
    return EvalDeleteEntry(
        evals=tuple(evals), allocs=tuple(allocs), jobs=tuple(jobs), deployments=tuple(deployments)
    )


def _old_deployments(snap: StateSnapshot, purged: set[tuple[str, str]], cut_ns: int) -> list[str]:
    """Terminal deployments last modified before ``cut_ns`` whose allocations are all terminal."""
    found: list[str] = []

    def old_terminal(d: Deployment) -> bool:
        return not d.active() and d.modify_time <= cut_ns

    for d in store_deployments.list_deployments(snap, where=old_terminal):
        if (d.namespace, d.job_id) in purged:
            continue
        job_allocs = store_allocs.allocs_by_job(snap, d.namespace, d.job_id)
        if any(a.deployment_id == d.id and not a.terminal() for a in job_allocs):
            continue
        found.append(d.id)
    return found


class JobGC(PeriodicLeaderTask):
    """Periodic eval/alloc/job GC while this server leads."""

    name = "job-gc"

    def __init__(self, ctx: ServerContext) -> None:
        super().__init__()
        self._ctx = ctx

    def interval_s(self) -> float:
        return GC_INTERVAL_S

    async def tick(self) -> object:
        threshold = self._ctx.config.deployment_gc_threshold
        return await self.collect(EVAL_GC_THRESHOLD_S, JOB_GC_THRESHOLD_S, threshold)

    async def collect(
        self, eval_threshold_s: float, job_threshold_s: float, deployment_threshold_s: float = 0.0
    ) -> EvalDeleteEntry:
        snap = self._ctx.store.snapshot()
        entry = plan_gc(snap, time.time_ns(), eval_threshold_s, job_threshold_s, deployment_threshold_s)
        if not entry.empty():
            await self._ctx.propose(MessageType.EVAL_DELETE, entry)
            logger.info(
                "job gc collected evals=%d allocs=%d jobs=%d deployments=%d",
                len(entry.evals),
                len(entry.allocs),
                len(entry.jobs),
                len(entry.deployments),
            )
        return entry
