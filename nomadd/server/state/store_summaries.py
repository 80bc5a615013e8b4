"""Derived views of a job: its status (pending/running/dead) and its summary.

Both are computed from the snapshot being read, not stored, so they can never disagree with the
allocations and evaluations they describe (Nomad stores them and keeps them in step on every
write; with immutable snapshots the derivation is as cheap as a lookup of the job's rows).
"""

from __future__ import annotations

import dataclasses

from nomadd.server.state import store_allocs, store_evals, store_periodic
from nomadd.server.state.store_jobs import Reader
from nomadd.structs.job import Job, JobStatus, JobType
from nomadd.structs.summary import JobChildrenSummary, JobSummary

__all__ = ["children_summary", "job_status", "job_summary", "with_status"]


def job_status(reader: Reader, job: Job) -> JobStatus:
    """Nomad's ``getJobStatus``.

    System jobs are running until stopped. Otherwise: any non-terminal allocation → running;
    any non-terminal evaluation → pending; some allocation or evaluation existed → dead; a
    stopped job → dead; else pending.
    """
    if job.type == JobType.SYSTEM or job.is_template():  # a template runs only through children
        return JobStatus.DEAD if job.stop else JobStatus.RUNNING
    allocs = store_allocs.allocs_by_job(reader, job.namespace, job.id)
    if any(not a.terminal() for a in allocs):
        return JobStatus.RUNNING
    evals = store_evals.evals_by_job(reader, job.namespace, job.id)
    if any(not e.terminal() for e in evals):
        return JobStatus.PENDING
    if allocs or evals or job.stop:
        return JobStatus.DEAD
    return JobStatus.PENDING


def with_status(reader: Reader, job: Job) -> Job:
    """The job as read: its derived status, and a ``ModifyIndex`` that moves with it.

    Nomad writes the job again, at a new ``ModifyIndex``, whenever its status changes; clients
    that follow a job (nomad-watch) take a job whose ``ModifyIndex`` did not grow for the one they
    already have and never see it die. So the index is the newest of the job's own and of the
    allocations and evaluations its status is derived from (system jobs: the job's own only).
    """
    modify = job.modify_index
    if job.type != JobType.SYSTEM:
        allocs = store_allocs.allocs_by_job(reader, job.namespace, job.id)
        evals = store_evals.evals_by_job(reader, job.namespace, job.id)
        modify = max([modify, *(a.modify_index for a in allocs), *(e.modify_index for e in evals)])
    return dataclasses.replace(job, status=job_status(reader, job), modify_index=modify)


def job_summary(reader: Reader, job: Job) -> JobSummary:
    """Allocation counts per task group; ``Queued`` from the newest evaluation that set it."""
    allocs = store_allocs.allocs_by_job(reader, job.namespace, job.id)
    queued: dict[str, int] = {}
    if not job.stop:
        for ev in reversed(store_evals.evals_by_job(reader, job.namespace, job.id)):
            if ev.queued_allocations and ev.job_modify_index >= job.job_modify_index:
                queued = dict(ev.queued_allocations)
                break
    summary = JobSummary.compute(
        job_id=job.id,
        namespace=job.namespace,
        groups=[tg.name for tg in job.task_groups],
        allocs=[(a.task_group, str(a.client_status)) for a in allocs],
        queued=queued,
    )
    modify = max([job.modify_index, *(a.modify_index for a in allocs)])
    if job.is_template():
        summary = dataclasses.replace(summary, children=children_summary(reader, job))
    return dataclasses.replace(summary, create_index=job.create_index, modify_index=modify)


def children_summary(reader: Reader, parent: Job) -> JobChildrenSummary:
    """How many children of a periodic or parameterized job are pending, running and dead."""
    counts = {JobStatus.PENDING: 0, JobStatus.RUNNING: 0, JobStatus.DEAD: 0}
    for child in store_periodic.children(reader, parent):
        counts[job_status(reader, child)] += 1
    return JobChildrenSummary(
        pending=counts[JobStatus.PENDING], running=counts[JobStatus.RUNNING], dead=counts[JobStatus.DEAD]
    )
