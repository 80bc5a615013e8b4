"""Eval, allocation and job GC (leader only; Nomad's core scheduler ``eval-gc`` / ``job-gc``).

Every ``GC_INTERVAL_S`` the leader collects, in one ``EVAL_DELETE`` entry:

* **evaluations** that are terminal and older than ``EVAL_GC_THRESHOLD_S`` (ModifyTime), when
  every allocation they placed is client-terminal; those allocations go with them;
* **jobs** that are stopped (or batch jobs that are dead) and older than ``JOB_GC_THRESHOLD_S``
  (SubmitTime), once all their evaluations are terminal and allocations client-terminal: the
  job, its versions, evaluations and allocations are removed.

``System.GarbageCollect`` (``PUT /v1/system/gc``) runs it at once with zero thresholds, as
Nomad's force-gc does (the server hands this collector to the system endpoint).
"""

from __future__ import annotations

import logging
import time

from nomadd.server.context import ServerContext
from nomadd.server.periodic import PeriodicLeaderTask
from nomadd.server.state import store_allocs, store_evals, store_jobs, store_summaries
from nomadd.server.state.store import StateSnapshot
from nomadd.structs.job import JobStatus, JobType
from nomadd.structs.messages import MessageType
from nomadd.structs.requests.eval import EvalDeleteEntry, JobRef
from nomadd.structs.timeutil import NS_PER_S

logger = logging.getLogger(__name__)

__all__ = ["EVAL_GC_THRESHOLD_S", "GC_INTERVAL_S", "JOB_GC_THRESHOLD_S", "JobGC", "plan_gc"]

GC_INTERVAL_S = 300.0  # Nomad's core GC cadence (eval_gc_interval / job_gc_interval: 5m)
EVAL_GC_THRESHOLD_S = 3600.0  # Nomad's eval_gc_threshold: 1h
JOB_GC_THRESHOLD_S = 4 * 3600.0  # Nomad's job_gc_threshold: 4h


def plan_gc(
    snap: StateSnapshot, now_ns: int, eval_threshold_s: float, job_threshold_s: float
) -> EvalDeleteEntry:
    """What to delete, as the ``EVAL_DELETE`` entry that deletes it."""
    evals: list[str] = []
    allocs: list[str] = []
    jobs: list[JobRef] = []
    job_cut = now_ns - int(job_threshold_s * NS_PER_S)
    eval_cut = now_ns - int(eval_threshold_s * NS_PER_S)
    purged: set[tuple[str, str]] = set()
    for job in store_jobs.list_jobs(snap):
        finished = job.stop or job.type in (JobType.BATCH, JobType.SYSBATCH)
        if not finished or job.submit_time > job_cut:
            continue
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
    for ev in store_evals.list_evals(snap):
        if (ev.namespace, ev.job_id) in purged or not ev.terminal() or ev.modify_time > eval_cut:
            continue
        placed = [a for a in store_allocs.allocs_by_job(snap, ev.namespace, ev.job_id) if a.eval_id == ev.id]
        if any(not a.client_terminal() for a in placed):
            continue
        evals.append(ev.id)
        allocs += [a.id for a in placed]
    return EvalDeleteEntry(evals=tuple(evals), allocs=tuple(allocs), jobs=tuple(jobs))


class JobGC(PeriodicLeaderTask):
    """Periodic eval/alloc/job GC while this server leads."""

    name = "job-gc"

    def __init__(self, ctx: ServerContext) -> None:
        super().__init__()
        self._ctx = ctx

    def interval_s(self) -> float:
        return GC_INTERVAL_S

    async def tick(self) -> object:
        return await self.collect(EVAL_GC_THRESHOLD_S, JOB_GC_THRESHOLD_S)

    async def collect(self, eval_threshold_s: float, job_threshold_s: float) -> EvalDeleteEntry:
        entry = plan_gc(self._ctx.store.snapshot(), time.time_ns(), eval_threshold_s, job_threshold_s)
        if not entry.empty():
            await self._ctx.propose(MessageType.EVAL_DELETE, entry)
            logger.info(
                "job gc collected evals=%d allocs=%d jobs=%d",
                len(entry.evals),
                len(entry.allocs),
                len(entry.jobs),
            )
        return entry
