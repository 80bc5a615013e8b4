"""FSM cases of ``JOB_STABILITY`` and ``SCALING_EVENT_REGISTER`` (Nomad's UpdateJobStability
and UpsertScalingEvent)."""

from __future__ import annotations

import dataclasses

from nomadd.server.state import store_jobs, store_scaling
from nomadd.server.state.store import Txn
from nomadd.structs.requests.job_plan import JobStabilityEntry, ScalingEventEntry

__all__ = ["apply_scaling_event", "apply_stability"]


def apply_stability(txn: Txn, entry: JobStabilityEntry) -> bool:
    """Set the version's ``Stable`` in the versions table, and on the job if it is the current
    version. False when that version is not tracked (anymore)."""
    key = store_jobs.job_key(entry.namespace, entry.job_id)
    versions = store_jobs.job_versions(txn, entry.namespace, entry.job_id)
    if not any(v.version == entry.version for v in versions):
        return False
    updated = tuple(
        dataclasses.replace(v, stable=entry.stable) if v.version == entry.version else v for v in versions
    )
    txn.put(store_jobs.VERSIONS_TABLE, key, updated)
    job = store_jobs.get_job(txn, entry.namespace, entry.job_id)
    if job is not None and job.version == entry.version:
        txn.put(store_jobs.TABLE, key, dataclasses.replace(job, stable=entry.stable, modify_index=txn.index))
    return True


def apply_scaling_event(txn: Txn, entry: ScalingEventEntry) -> None:
    store_scaling.add_event_locked(
        txn, entry.namespace, entry.job_id, entry.job_create_index, entry.group, entry.event
    )
