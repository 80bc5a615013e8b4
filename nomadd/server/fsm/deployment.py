"""FSM case of ``DEPLOYMENT_UPDATE``: every deployment write in one entry kind.

The parts apply in order: deployments upserted whole, status changes (a terminal deployment
is never revived), promotions (the group is marked promoted; Nomad's ``UpdateDeploymentPromotion``),
allocation health set by an operator, job versions marked stable, a job registered again
(auto-revert) and the evaluations that follow. Unknown IDs are skipped: the proposer read a
snapshot that may be a little older than the entry's place in the log.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from nomadd.server.state import store_allocs, store_deployments, store_evals, store_jobs
from nomadd.server.state.store import Txn
from nomadd.server.state.store_evals import ApplyResult
from nomadd.structs.deployment import AllocDeploymentStatus, Deployment, DeploymentStatusUpdate
from nomadd.structs.requests.deployment import DeploymentUpdateEntry, JobStable
from nomadd.structs.requests.plan import PlanEntry

__all__ = ["apply_deployment_update", "apply_plan_deployment", "mark_stable_locked"]


def mark_stable_locked(txn: Txn, s: JobStable) -> None:
    """Set ``Stable`` on the job's version ``s.version`` (current row and version history)."""
    key = store_jobs.job_key(s.namespace, s.job_id)
    job = store_jobs.get_job(txn, s.namespace, s.job_id)
    if job is not None and job.version == s.version and job.stable != s.stable:
        txn.put(store_jobs.TABLE, key, dataclasses.replace(job, stable=s.stable, modify_index=txn.index))
    versions = store_jobs.job_versions(txn, s.namespace, s.job_id)
    if any(v.version == s.version and v.stable != s.stable for v in versions):
        txn.put(
            store_jobs.VERSIONS_TABLE,
            key,
            tuple(dataclasses.replace(v, stable=s.stable) if v.version == s.version else v for v in versions),
        )


def _status_updates(txn: Txn, updates: Iterable[DeploymentStatusUpdate], time_ns: int) -> None:
    for upd in updates:
        old = store_deployments.get_deployment(txn, upd.deployment_id)
        if old is None or not old.active():
            continue
        store_deployments.put_locked(
            txn,
            dataclasses.replace(old, status=upd.status, status_description=upd.status_description),
            upd.updated_at or time_ns,
        )


def apply_plan_deployment(txn: Txn, plan: PlanEntry) -> None:
    """A plan's deployment parts, before its allocations (which count into the deployment).

    A deployment the plan created is stored as it is; one that exists keeps its stored form
    (its counters move here, not in the scheduler's copy)."""
    d = plan.deployment
    if d is not None and store_deployments.get_deployment(txn, d.id) is None:
        store_deployments.put_locked(txn, d)
    _status_updates(txn, plan.deployment_updates, 0)


def apply_deployment_update(txn: Txn, entry: DeploymentUpdateEntry) -> ApplyResult:
    for d in entry.upserts:
        store_deployments.put_locked(txn, d, entry.time_ns)
    _status_updates(txn, entry.status_updates, entry.time_ns)
    for p in entry.promotions:
        old = store_deployments.get_deployment(txn, p.deployment_id)
        if old is None or not old.active():
            continue
        groups = {
            name: dataclasses.replace(s, promoted=True)
            if s.desired_canaries > 0 and (p.all or name in p.groups)
            else s
            for name, s in old.task_groups.items()
        }
        promoted: Deployment = dataclasses.replace(old, task_groups=groups)
        store_deployments.put_locked(txn, promoted, entry.time_ns)
    for h in entry.alloc_health:
        for alloc_id, healthy in [(i, True) for i in h.healthy] + [(i, False) for i in h.unhealthy]:
            alloc = store_allocs.get_alloc(txn, alloc_id)
            if alloc is None or alloc.deployment_id != h.deployment_id:
                continue
            base = alloc.deployment_status or AllocDeploymentStatus()
            status = dataclasses.replace(base, healthy=healthy, timestamp=h.timestamp, modify_index=txn.index)
            store_allocs.put_locked(
                txn, dataclasses.replace(alloc, deployment_status=status, modify_index=txn.index)
            )
    for s in entry.stable:
        mark_stable_locked(txn, s)
    job_modify_index = 0
    if entry.job is not None:
        stored, _ = store_jobs.upsert_job_locked(txn, entry.job, entry.time_ns)
        job_modify_index = stored.job_modify_index
    evals = store_evals.upsert_evals_locked(
        txn,
        [
            dataclasses.replace(e, job_modify_index=job_modify_index or e.job_modify_index)
            for e in entry.evals
        ],
    )
    return ApplyResult(evals=tuple(evals), job_modify_index=job_modify_index)
