"""``Job.*`` RPCs (Nomad's job_endpoint.go).

``Job.Register`` canonicalizes and validates the :class:`Job` (400 listing every bad field), makes
the evaluation's ID and the submit time, and proposes ONE ``JOB_REGISTER`` entry holding both
the job and its evaluation (registers that arrive while one is in Raft share a
``JOB_REGISTER_BATCH`` entry: :mod:`nomadd.server.group_commit`). It answers after that entry is
applied. An identical re-register changes nothing in the job (same version and JobModifyIndex);
a new evaluation is still created, as Nomad does.

``Job.Deregister``: stop (a new version with ``stop``) or purge (job and versions removed),
plus a ``job-deregister`` evaluation, in one entry.

Reads (blocking): ``Job.GetJob``, ``Job.List``, ``Job.Allocations``, ``Job.Evaluations``,
``Job.Summary``, ``Job.GetJobVersions``. A job's ``status`` is derived on read
(``store_summaries.with_status``).
"""

from __future__ import annotations

import time

from nomadd.rpc import RPCRegistry
from nomadd.server.alloc_endpoint import new_eval
from nomadd.server.context import ServerContext
from nomadd.server.fsm.job import batch_results
from nomadd.server.group_commit import GroupCommit
from nomadd.server.state import store_allocs, store_evals, store_jobs, store_namespaces, store_summaries
from nomadd.server.state.store import StateSnapshot, StateStore
from nomadd.server.state.store_evals import ApplyResult
from nomadd.structs.alloc import AllocListStub
from nomadd.structs.errors import UnknownJobError, ValidationError
from nomadd.structs.eval import EvalTrigger, Evaluation
from nomadd.structs.job import Job, JobListStub
from nomadd.structs.job_index import enforce_index_problem
from nomadd.structs.messages import MessageType
from nomadd.structs.requests import WriteMeta
from nomadd.structs.requests.job import (
    JOB_ALLOCATIONS,
    JOB_DEREGISTER,
    JOB_EVALUATIONS,
    JOB_GET,
    JOB_LIST,
    JOB_REGISTER,
    JOB_SUMMARY,
    JOB_VERSIONS,
    JobAllocationsReply,
    JobDeregisterEntry,
    JobDeregisterReply,
    JobDeregisterRequest,
    JobEvaluationsReply,
    JobGetReply,
    JobListReply,
    JobListRequest,
    JobRegisterBatchEntry,
    JobRegisterEntry,
    JobRegisterReply,
    JobRegisterRequest,
    JobSpecificRequest,
    JobSummaryReply,
    JobVersionsReply,
)
from nomadd.structs.services import service_warnings
from nomadd.structs.summary import JobSummary

__all__ = [
    "KNOWN_DRIVERS",
    "JobEndpoint",
    "check_enforced_index",
    "check_placeable",
    "current_job",
]

# Drivers a client can run (nomadd.drivers.DRIVERS; servers do not import the drivers package).
KNOWN_DRIVERS = ("raw_exec", "exec", "mock", "docker")

_JOB_TABLES = (store_jobs.TABLE, store_allocs.TABLE, store_evals.TABLE)


def check_placeable(store: StateStore, job: Job) -> None:
    """The job's namespace and node pool exist (Nomad's namespace and node pool admission hooks).
    Reads rows of the live store: a snapshot per register would make the FSM copy tables."""
    ns = store_namespaces.get_namespace(store, job.namespace)
    if ns is None:
        raise ValidationError(f'job "{job.id}" is in nonexistent namespace "{job.namespace}"')
    refused = store_namespaces.disallowed_drivers(ns, [t.driver for tg in job.task_groups for t in tg.tasks])
    if len(refused) == 1:
        raise ValidationError(f'used task driver "{refused[0]}" is not allowed in namespace "{ns.name}"')
    if refused:
        listed = " ".join(f'"{d}"' for d in refused)
        raise ValidationError(f'used task drivers [{listed}] are not allowed in namespace "{ns.name}"')
    if not store_namespaces.pool_exists(store, job.node_pool, store.snapshot):
        raise ValidationError(f'job "{job.id}" is in nonexistent node pool "{job.node_pool}"')


def current_job(store: StateStore, namespace: str, job_id: str) -> Job | None:
    """The stored job, read from the live store (no snapshot: see :func:`check_placeable`)."""
    job: Job | None = store.get(store_jobs.TABLE, store_jobs.job_key(namespace, job_id))
    return job


def check_enforced_index(existing: Job | None, job_modify_index: int) -> None:
    """Nomad's EnforceIndex rule: the stored job's JobModifyIndex must be the one given (0: no
    job of that ID may exist). A 400 in Nomad's words otherwise."""
    problem = enforce_index_problem(
        existing.job_modify_index if existing is not None else None, job_modify_index
    )
    if problem:
        raise ValidationError(problem)


def _make_batch(entries: tuple[JobRegisterEntry, ...]) -> JobRegisterBatchEntry:
    return JobRegisterBatchEntry(requests=entries)


class JobEndpoint:
    def __init__(self, ctx: ServerContext) -> None:
        self._ctx = ctx
        self.registers: GroupCommit[JobRegisterEntry] = GroupCommit(
            ctx, MessageType.JOB_REGISTER, MessageType.JOB_REGISTER_BATCH, _make_batch, batch_results
        )

    def register(self, registry: RPCRegistry) -> None:
        registry.register(JOB_REGISTER, self.register_job, kind="write")
        registry.register(JOB_DEREGISTER, self.deregister, kind="write")
        registry.register(JOB_GET, self.get_job, kind="read")
        registry.register(JOB_LIST, self.list_jobs, kind="read")
        registry.register(JOB_ALLOCATIONS, self.allocations, kind="read")
        registry.register(JOB_EVALUATIONS, self.evaluations, kind="read")
        registry.register(JOB_SUMMARY, self.summary, kind="read")
        registry.register(JOB_VERSIONS, self.versions, kind="read")

    # ---- writes ------------------------------------------------------------------------------
    async def register_job(self, req: JobRegisterRequest) -> JobRegisterReply:
        job = req.job.canonicalize()
        job.validate(KNOWN_DRIVERS, self._ctx.config.limits)  # 400 listing every bad field
        check_placeable(self._ctx.store, job)
        if req.enforce_index:
            existing = current_job(self._ctx.store, job.namespace, job.id)
            check_enforced_index(existing, req.job_modify_index)
            return await self.commit(job, enforce_index=req.job_modify_index)
        return await self.commit(job)

    async def commit(
        self, job: Job, trigger: EvalTrigger = EvalTrigger.JOB_REGISTER, *, enforce_index: int | None = None
    ) -> JobRegisterReply:
        """Store ``job`` (checked) with a new evaluation triggered by ``trigger``; with
        ``enforce_index``, only if the stored JobModifyIndex is still that when it applies."""
        now = time.time_ns()
        ev: Evaluation | None = new_eval(
            job_id=job.id,
            namespace=job.namespace,
            job_type=str(job.type),
            priority=job.priority,
            trigger=trigger,
            now_ns=now,
        )
        if job.is_template():  # periodic/parameterized: only its children are evaluated (Nomad)
            ev = None
        entry = JobRegisterEntry(
            job=job,
            eval=ev,
            submit_time=now,
            enforce_index=enforce_index is not None,
            job_modify_index=enforce_index or 0,
        )
        result, index = await self.registers.apply((job.namespace, job.id), entry)
        assert isinstance(result, ApplyResult)
        if result.refused:
            raise ValidationError(result.refused)
        return JobRegisterReply(
            meta=WriteMeta(index=index),
            eval_id=ev.id if ev is not None else "",
            eval_create_index=index if ev is not None else 0,
            job_modify_index=result.job_modify_index,
            warnings="\n".join(service_warnings([s for tg in job.task_groups for s in tg.all_services()])),
        )

    async def deregister(self, req: JobDeregisterRequest) -> JobDeregisterReply:
        job = store_jobs.get_job(self._ctx.store.snapshot(), req.namespace, req.job_id)
        if job is None:
            raise UnknownJobError(f"job not found: {req.job_id}")
        now = time.time_ns()
        ev = new_eval(
            job_id=job.id,
            namespace=job.namespace,
            job_type=str(job.type),
            priority=job.priority,
            trigger=EvalTrigger.JOB_DEREGISTER,
            now_ns=now,
        )
        entry = JobDeregisterEntry(
            namespace=req.namespace,
            job_id=req.job_id,
            purge=req.purge,
            eval=None if job.is_template() else ev,
            submit_time=now,
        )
        result, index = await self._ctx.propose(MessageType.JOB_DEREGISTER, entry)
        assert isinstance(result, ApplyResult)
        if not result.found:
            raise UnknownJobError(f"job not found: {req.job_id}")
        return JobDeregisterReply(
            meta=WriteMeta(index=index),
            eval_id="" if job.is_template() else ev.id,
            eval_create_index=0 if job.is_template() else index,
            job_modify_index=result.job_modify_index,
        )

    # ---- reads -------------------------------------------------------------------------------
    async def get_job(self, req: JobSpecificRequest) -> JobGetReply:
        def fn(snap: StateSnapshot) -> Job | None:
            job = store_jobs.get_job(snap, req.namespace, req.job_id)
            return store_summaries.with_status(snap, job) if job is not None else None

        job, meta = await self._ctx.blocking.query(req, _JOB_TABLES, fn)
        return JobGetReply(meta=meta, job=job)

    async def list_jobs(self, req: JobListRequest) -> JobListReply:
        def fn(snap: StateSnapshot) -> tuple[JobListStub, ...]:
            out = []
            for j in store_jobs.list_jobs(snap, req.namespace, req.prefix):
                j = store_summaries.with_status(snap, j)
                out.append(j.stub(store_summaries.job_summary(snap, j)))
            return tuple(out)

        jobs, meta = await self._ctx.blocking.query(req, _JOB_TABLES, fn)
        return JobListReply(meta=meta, jobs=jobs)

    async def allocations(self, req: JobSpecificRequest) -> JobAllocationsReply:
        def fn(snap: StateSnapshot) -> tuple[AllocListStub, ...]:
            allocs = store_allocs.allocs_by_job(snap, req.namespace, req.job_id)
            job = store_jobs.get_job(snap, req.namespace, req.job_id)
            if job is not None and not req.all:  # Nomad's AllocsByJob: this job's, not a purged one's
                allocs = [a for a in allocs if a.job is None or a.job.create_index == job.create_index]
            return tuple(a.stub() for a in sorted(allocs, key=lambda a: (a.create_index, a.id)))

        stubs, meta = await self._ctx.blocking.query(req, (store_allocs.TABLE, store_jobs.TABLE), fn)
        return JobAllocationsReply(meta=meta, allocations=stubs)

    async def evaluations(self, req: JobSpecificRequest) -> JobEvaluationsReply:
        def fn(snap: StateSnapshot) -> tuple[Evaluation, ...]:
            return tuple(store_evals.evals_by_job(snap, req.namespace, req.job_id))

        evals, meta = await self._ctx.blocking.query(req, (store_evals.TABLE,), fn)
        return JobEvaluationsReply(meta=meta, evaluations=evals)

    async def summary(self, req: JobSpecificRequest) -> JobSummaryReply:
        def fn(snap: StateSnapshot) -> JobSummary | None:
            job = store_jobs.get_job(snap, req.namespace, req.job_id)
            return store_summaries.job_summary(snap, job) if job is not None else None

        summary, meta = await self._ctx.blocking.query(req, _JOB_TABLES, fn)
        return JobSummaryReply(meta=meta, summary=summary)

    async def versions(self, req: JobSpecificRequest) -> JobVersionsReply:
        def fn(snap: StateSnapshot) -> tuple[Job, ...]:
            return tuple(store_jobs.job_versions(snap, req.namespace, req.job_id))

        versions, meta = await self._ctx.blocking.query(req, (store_jobs.TABLE,), fn)
        return JobVersionsReply(meta=meta, versions=versions)
