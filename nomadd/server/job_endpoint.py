"""``Job.*`` RPCs (Nomad's job_endpoint.go) and the FSM cases for job writes.

``Job.Register`` ``{"Job": <Nomad API JSON>}`` reads the job (unknown keys ignored, wrong types
→ ValidationError naming the field), canonicalizes and validates it (400 listing every bad
field), makes the evaluation's ID and the submit time, and proposes ONE ``JOB_REGISTER`` entry
holding both the job and its evaluation (registers that arrive while one is in Raft share a
``JOB_REGISTER_BATCH`` entry: :mod:`nomadd.server.group_commit`). It answers after that entry is applied:
``{"EvalID", "EvalCreateIndex", "JobModifyIndex", "Warnings", "Index"}``. An identical
re-register changes nothing in the job (same version and JobModifyIndex); a new evaluation is
still created, as Nomad does.

``Job.Deregister`` ``{"JobID", "Namespace", "Purge"}``: stop (a new version with ``Stop``) or
purge (job and versions removed), plus a ``job-deregister`` evaluation, in one entry.

Reads (blocking, API JSON): ``Job.GetJob``, ``Job.List``, ``Job.Allocations``,
``Job.Evaluations``, ``Job.Summary``, ``Job.GetJobVersions``. A job's ``Status`` is derived on
read (``store_summaries.job_status``).
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Any

from nomadd.server import plan_apply  # noqa: F401  (registers the ALLOC_UPDATE FSM case)
from nomadd.server.alloc_endpoint import new_eval
from nomadd.server.fsm import encode_payload, register_handler
from nomadd.server.group_commit import GroupCommit
from nomadd.server.state import store_allocs, store_evals, store_jobs, store_summaries
from nomadd.server.state.store import StateSnapshot, Txn
from nomadd.server.state.store_evals import ApplyResult
from nomadd.structs.codec import from_api, from_wire, to_api, to_wire
from nomadd.structs.errors import UnknownJobError, ValidationError
from nomadd.structs.eval import EvalTrigger, Evaluation
from nomadd.structs.job import Job
from nomadd.structs.messages import MessageType

if TYPE_CHECKING:
    from nomadd.rpc import RPCRegistry
    from nomadd.server.server import Server

__all__ = ["KNOWN_DRIVERS", "parse_job", "register"]

# Drivers a client can run (nomadd.drivers.DRIVERS; servers do not import the drivers package).
KNOWN_DRIVERS = ("raw_exec", "exec", "mock")
_JOB_TABLES = (store_jobs.TABLE, store_allocs.TABLE, store_evals.TABLE)


# ---- FSM ---------------------------------------------------------------------------------


def _with_index(txn: Txn, raw: Any, job_modify_index: int) -> list[Evaluation]:
    if not raw:
        return []
    ev = raw if isinstance(raw, Evaluation) else from_wire(Evaluation, raw)
    ev = dataclasses.replace(ev, job_modify_index=job_modify_index)
    return store_evals.upsert_evals_locked(txn, [ev])


def _apply_register(txn: Txn, req: dict[str, Any]) -> object:
    # the proposing server's own request holds the structs themselves (GroupCommit's local)
    raw = req["Job"]
    job = raw if isinstance(raw, Job) else from_wire(Job, raw)
    stored, changed = store_jobs.upsert_job_locked(txn, job, int(req.get("SubmitTime", 0)))
    evals = _with_index(txn, req.get("Eval"), stored.job_modify_index)
    return ApplyResult(evals=tuple(evals), job_modify_index=stored.job_modify_index, changed=changed)


def _apply_deregister(txn: Txn, req: dict[str, Any]) -> object:
    namespace, job_id = str(req["Namespace"]), str(req["JobID"])
    job = store_jobs.get_job(txn, namespace, job_id)
    if job is None:
        return ApplyResult(found=False)
    if req.get("Purge"):
        store_jobs.delete_job_locked(txn, namespace, job_id)
        modify = txn.index
    else:
        stored, _ = store_jobs.upsert_job_locked(
            txn, dataclasses.replace(job, stop=True), int(req.get("SubmitTime", 0))
        )
        modify = stored.job_modify_index
    evals = _with_index(txn, req.get("Eval"), modify)
    return ApplyResult(evals=tuple(evals), job_modify_index=modify)


def _apply_register_batch(txn: Txn, req: dict[str, Any]) -> object:
    results = [_apply_register(txn, r) for r in req.get("Requests") or ()]
    assert all(isinstance(r, ApplyResult) for r in results)
    batch = tuple(r for r in results if isinstance(r, ApplyResult))
    return ApplyResult(evals=tuple(e for r in batch for e in r.evals), batch=batch)


def _batch_results(result: object) -> tuple[ApplyResult, ...]:
    assert isinstance(result, ApplyResult)
    return result.batch


register_handler(MessageType.JOB_REGISTER, _apply_register)
register_handler(MessageType.JOB_REGISTER_BATCH, _apply_register_batch)
register_handler(MessageType.JOB_DEREGISTER, _apply_deregister)


# ---- helpers -----------------------------------------------------------------------------


def parse_job(raw: object) -> Job:
    """API JSON → canonicalized, validated :class:`Job` (ValidationError names the field)."""
    if not isinstance(raw, dict):
        raise ValidationError('Job: missing job (body must be {"Job": {...}})')
    job = from_api(Job, raw, path="Job").canonicalize()
    job.validate(KNOWN_DRIVERS)
    return job


def _job_api(snap: StateSnapshot, job: Job) -> dict[str, Any]:
    return to_api(store_summaries.with_status(snap, job))


def _stub_api(snap: StateSnapshot, job: Job) -> dict[str, Any]:
    job = store_summaries.with_status(snap, job)
    return to_api(job.stub(store_summaries.job_summary(snap, job)))


def register(server: Server, registry: RPCRegistry) -> None:
    registers = GroupCommit(
        server.raft, MessageType.JOB_REGISTER, MessageType.JOB_REGISTER_BATCH, _batch_results
    )

    async def register_job(args: dict[str, Any]) -> dict[str, Any]:
        job = parse_job(args.get("Job"))
        now = time.time_ns()
        ev = new_eval(
            job_id=job.id,
            namespace=job.namespace,
            job_type=str(job.type),
            priority=job.priority,
            trigger=EvalTrigger.JOB_REGISTER,
            now_ns=now,
        )
        payload = {"Job": to_wire(job), "Eval": to_wire(ev), "SubmitTime": now}
        local = {**payload, "Job": job, "Eval": ev}
        result, index = await registers.apply((job.namespace, job.id), payload, local)
        assert isinstance(result, ApplyResult)
        return {
            "EvalID": ev.id,
            "EvalCreateIndex": index,
            "JobModifyIndex": result.job_modify_index,
            "Warnings": "",
            "Index": index,
        }

    async def deregister(args: dict[str, Any]) -> dict[str, Any]:
        namespace = str(args.get("Namespace") or "default")
        job_id = str(args.get("JobID") or "")
        job = store_jobs.get_job(server.store.snapshot(), namespace, job_id)
        if job is None:
            raise UnknownJobError(f"job not found: {job_id}")
        now = time.time_ns()
        ev = new_eval(
            job_id=job.id,
            namespace=job.namespace,
            job_type=str(job.type),
            priority=job.priority,
            trigger=EvalTrigger.JOB_DEREGISTER,
            now_ns=now,
        )
        payload = {
            "Namespace": namespace,
            "JobID": job_id,
            "Purge": bool(args.get("Purge")),
            "Eval": to_wire(ev),
            "SubmitTime": now,
        }
        result, index = await server.raft.apply(MessageType.JOB_DEREGISTER, encode_payload(payload))
        assert isinstance(result, ApplyResult)
        if not result.found:
            raise UnknownJobError(f"job not found: {job_id}")
        return {
            "EvalID": ev.id,
            "EvalCreateIndex": index,
            "JobModifyIndex": result.job_modify_index,
            "Index": index,
        }

    def _ids(args: dict[str, Any]) -> tuple[str, str]:
        return str(args.get("Namespace") or "default"), str(args.get("JobID") or "")

    async def get_job(args: dict[str, Any]) -> dict[str, Any]:
        namespace, job_id = _ids(args)

        def fn(snap: StateSnapshot) -> Any:
            job = store_jobs.get_job(snap, namespace, job_id)
            return _job_api(snap, job) if job is not None else None

        return await server.blocking_query(args, _JOB_TABLES, fn)

    async def list_(args: dict[str, Any]) -> dict[str, Any]:
        namespace = str(args.get("Namespace") or "default")
        prefix = str(args.get("Prefix") or "")

        def fn(snap: StateSnapshot) -> Any:
            return [_stub_api(snap, j) for j in store_jobs.list_jobs(snap, namespace, prefix)]

        return await server.blocking_query(args, _JOB_TABLES, fn)

    async def allocations(args: dict[str, Any]) -> dict[str, Any]:
        namespace, job_id = _ids(args)

        def fn(snap: StateSnapshot) -> Any:
            allocs = store_allocs.allocs_by_job(snap, namespace, job_id)
            return [to_api(a.stub()) for a in sorted(allocs, key=lambda a: (a.create_index, a.id))]

        return await server.blocking_query(args, (store_allocs.TABLE,), fn)

    async def evaluations(args: dict[str, Any]) -> dict[str, Any]:
        namespace, job_id = _ids(args)

        def fn(snap: StateSnapshot) -> Any:
            return [to_api(e) for e in store_evals.evals_by_job(snap, namespace, job_id)]

        return await server.blocking_query(args, (store_evals.TABLE,), fn)

    async def summary(args: dict[str, Any]) -> dict[str, Any]:
        namespace, job_id = _ids(args)

        def fn(snap: StateSnapshot) -> Any:
            job = store_jobs.get_job(snap, namespace, job_id)
            return to_api(store_summaries.job_summary(snap, job)) if job is not None else None

        return await server.blocking_query(args, _JOB_TABLES, fn)

    async def versions(args: dict[str, Any]) -> dict[str, Any]:
        namespace, job_id = _ids(args)

        def fn(snap: StateSnapshot) -> Any:
            found = store_jobs.job_versions(snap, namespace, job_id)
            if not found:
                return None
            return {"Versions": [to_api(j) for j in found], "Diffs": None}

        return await server.blocking_query(args, (store_jobs.TABLE,), fn)

    registry.register("Job.Register", register_job, kind="write")
    registry.register("Job.Deregister", deregister, kind="write")
    registry.register("Job.GetJob", get_job, kind="read")
    registry.register("Job.List", list_, kind="read")
    registry.register("Job.Allocations", allocations, kind="read")
    registry.register("Job.Evaluations", evaluations, kind="read")
    registry.register("Job.Summary", summary, kind="read")
    registry.register("Job.GetJobVersions", versions, kind="read")
