"""FSM case of ``PERIODIC_LAUNCH``, and the periodic bookkeeping of job registers.

* ``PERIODIC_LAUNCH`` writes a periodic job's child, its evaluation and the parent's
  :class:`~nomadd.structs.periodic.PeriodicLaunch` row in one entry. It is refused (an
  :class:`ApplyResult` with ``found=False``, nothing written) when the parent is gone or no
  longer an active periodic job, when the child exists already, or, for a scheduled launch,
  when its time is not after the recorded last launch. So a launch is applied at most once
  even if two leaders in turn proposed it.
* :func:`record_register` (called by the ``JOB_REGISTER`` case): an active periodic job gets
  its first row, the insertion time (Nomad's applyUpsertJob), so a leader elected before its
  first launch knows which launch it missed.
"""

from __future__ import annotations

from nomadd.server.state import store_evals, store_jobs, store_periodic
from nomadd.server.state.store import Txn
from nomadd.server.state.store_evals import ApplyResult
from nomadd.structs.codec_diff import fast_replace
from nomadd.structs.job import Job
from nomadd.structs.requests.periodic import PeriodicLaunchEntry

__all__ = ["apply_periodic_launch", "find_idempotent_child", "record_register"]


def apply_periodic_launch(txn: Txn, entry: PeriodicLaunchEntry) -> ApplyResult:
    child = entry.job
    parent = store_jobs.get_job(txn, child.namespace, child.parent_id)
    if parent is None or not parent.is_periodic_active():
        return ApplyResult(found=False, changed=False)
    if store_jobs.get_job(txn, child.namespace, child.id) is not None:
        return ApplyResult(found=False, changed=False)
    last = store_periodic.get_launch(txn, parent.namespace, parent.id)
    if not entry.force and last is not None and entry.launch <= last.launch:
        return ApplyResult(found=False, changed=False)
    stored, _ = store_jobs.upsert_job_locked(txn, child, entry.submit_time)
    ev = fast_replace(entry.eval, job_modify_index=stored.job_modify_index)
    evals = store_evals.upsert_evals_locked(txn, [ev])
    launch = entry.launch if last is None else max(last.launch, entry.launch)
    store_periodic.upsert_launch_locked(txn, parent.namespace, parent.id, launch)
    return ApplyResult(evals=tuple(evals), job_modify_index=stored.job_modify_index)


def record_register(txn: Txn, job: Job, submit_time: int) -> None:
    """After ``job`` was stored by a register: its first launch row if it is periodic."""
    if job.is_periodic_active() and store_periodic.get_launch(txn, job.namespace, job.id) is None:
        store_periodic.upsert_launch_locked(txn, job.namespace, job.id, submit_time)


def find_idempotent_child(reader: store_jobs.Reader, job: Job) -> Job | None:
    """An earlier child of ``job``'s parent dispatched with the same idempotency token
    (Nomad's CheckIdempotencyToken: any such child still stored, whatever its status)."""
    token = job.dispatch_idempotency_token
    if not token or not job.parent_id:
        return None
    for other in store_jobs.list_jobs(reader, job.namespace, job.parent_id + "/"):
        if (
            other.id != job.id
            and other.parent_id == job.parent_id
            and other.dispatch_idempotency_token == token
        ):
            return other
    return None
