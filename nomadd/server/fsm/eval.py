"""FSM cases of the evaluation entries: ``EVAL_UPDATE`` and ``EVAL_DELETE`` (GC)."""

from __future__ import annotations

from nomadd.server.state import store_allocs, store_deployments, store_evals, store_jobs, store_periodic
from nomadd.server.state.store import Txn
from nomadd.server.state.store_evals import ApplyResult
from nomadd.structs.requests.eval import EvalDeleteEntry, EvalDeleteResult, EvalUpdateEntry

__all__ = ["apply_eval_delete", "apply_eval_update"]


def apply_eval_update(txn: Txn, entry: EvalUpdateEntry) -> ApplyResult:
    return ApplyResult(evals=tuple(store_evals.upsert_evals_locked(txn, entry.evals)))


def apply_eval_delete(txn: Txn, entry: EvalDeleteEntry) -> EvalDeleteResult:
    """GC: purged jobs (with their versions), then allocations, evaluations and deployments."""
    for job in entry.jobs:
        store_jobs.delete_job_locked(txn, job.namespace, job.job_id)
        store_periodic.delete_launch_locked(txn, job.namespace, job.job_id)  # Nomad's DeleteJobTxn
    allocs = store_allocs.delete_locked(txn, entry.allocs)
    evals = store_evals.delete_evals_locked(txn, entry.evals)
    store_deployments.delete_locked(txn, entry.deployments)
    return EvalDeleteResult(evals=evals, allocs=allocs)
