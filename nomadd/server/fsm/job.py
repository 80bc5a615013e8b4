"""FSM cases of the job entries: ``JOB_REGISTER``, ``JOB_REGISTER_BATCH``, ``JOB_DEREGISTER``."""

from __future__ import annotations

import dataclasses

from nomadd.server.fsm import periodic
from nomadd.server.state import store_deployments, store_evals, store_jobs, store_periodic
from nomadd.server.state.store import Txn
from nomadd.server.state.store_evals import ApplyResult
from nomadd.structs.codec_diff import fast_replace
from nomadd.structs.eval import Evaluation
from nomadd.structs.job_index import enforce_index_problem
from nomadd.structs.requests.job import JobDeregisterEntry, JobRegisterBatchEntry, JobRegisterEntry

__all__ = ["apply_deregister", "apply_register", "apply_register_batch", "batch_results"]


def _with_index(txn: Txn, ev: Evaluation | None, job_modify_index: int) -> list[Evaluation]:
    if ev is None:
        return []
    return store_evals.upsert_evals_locked(txn, [fast_replace(ev, job_modify_index=job_modify_index)])


def apply_register(txn: Txn, entry: JobRegisterEntry) -> ApplyResult:
    if periodic.find_idempotent_child(txn, entry.job) is not None:  # a dispatch that raced its twin
        return ApplyResult(found=False, changed=False)
    if entry.enforce_index:  # checked again here: a register committed meanwhile wins
        existing = store_jobs.get_job(txn, entry.job.namespace, entry.job.id)
        current = existing.job_modify_index if existing is not None else None
        refused = enforce_index_problem(current, entry.job_modify_index)
        if refused:
            return ApplyResult(found=existing is not None, changed=False, refused=refused)
    stored, changed = store_jobs.upsert_job_locked(txn, entry.job, entry.submit_time)
    periodic.record_register(txn, stored, entry.submit_time)
    evals = _with_index(txn, entry.eval, stored.job_modify_index)
    return ApplyResult(evals=tuple(evals), job_modify_index=stored.job_modify_index, changed=changed)


def apply_register_batch(txn: Txn, entry: JobRegisterBatchEntry) -> ApplyResult:
    batch = tuple(apply_register(txn, r) for r in entry.requests)
    return ApplyResult(evals=tuple(e for r in batch for e in r.evals), batch=batch)


def batch_results(result: object) -> tuple[ApplyResult, ...]:
    """One result per request of a ``JOB_REGISTER_BATCH`` entry (for the group commit)."""
    assert isinstance(result, ApplyResult)
    return result.batch


def apply_deregister(txn: Txn, entry: JobDeregisterEntry) -> ApplyResult:
    job = store_jobs.get_job(txn, entry.namespace, entry.job_id)
    if job is None:
        return ApplyResult(found=False)
    if entry.purge:
        store_jobs.delete_job_locked(txn, entry.namespace, entry.job_id)
        store_periodic.delete_launch_locked(txn, entry.namespace, entry.job_id)
        gone = store_deployments.deployments_by_job(txn, entry.namespace, entry.job_id)
        store_deployments.delete_locked(txn, [d.id for d in gone])
        modify = txn.index
    else:
        stored, _ = store_jobs.upsert_job_locked(txn, dataclasses.replace(job, stop=True), entry.submit_time)
        modify = stored.job_modify_index
    evals = _with_index(txn, entry.eval, modify)
    return ApplyResult(evals=tuple(evals), job_modify_index=modify)
