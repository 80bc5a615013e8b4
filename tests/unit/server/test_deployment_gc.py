"""Deployment GC (Nomad's ``deploymentGC``): terminal deployments older than the threshold go,
with the other GC deletions in one ``EVAL_DELETE`` entry; active deployments, young ones and
those an allocation still running references stay. A threshold of 0 (the forced GC) takes every
terminal one."""

from __future__ import annotations

import dataclasses

from nomadd.server.fsm.deployment import apply_plan_deployment
from nomadd.server.fsm.eval import apply_eval_delete
from nomadd.server.job_gc import DEPLOYMENT_GC_THRESHOLD_S, plan_gc
from nomadd.server.state import store_allocs, store_deployments
from nomadd.server.state.store import StateStore
from nomadd.structs.alloc import Allocation, AllocClientStatus
from nomadd.structs.deployment import DESC_NEWER_JOB, Deployment, DeploymentStatus, DeploymentStatusUpdate
from nomadd.structs.requests.plan import PlanEntry
from nomadd.structs.timeutil import NS_PER_S

NOW = 1_800_000_000 * NS_PER_S
HOUR = 3600 * NS_PER_S


def _store() -> StateStore:
    store = StateStore()
    rows = [
        ("old-done", DeploymentStatus.SUCCESSFUL, NOW - 2 * HOUR),
        ("old-failed", DeploymentStatus.FAILED, NOW - 2 * HOUR),
        ("old-running", DeploymentStatus.RUNNING, NOW - 2 * HOUR),
        ("young-done", DeploymentStatus.CANCELLED, NOW - 60 * NS_PER_S),
        ("old-in-use", DeploymentStatus.SUCCESSFUL, NOW - 2 * HOUR),
    ]
    with store.write(2) as txn:
        for dep_id, status, mtime in rows:
            store_deployments.put_locked(txn, Deployment(id=dep_id, job_id="web", status=status), mtime)
        for n, (dep_id, client) in enumerate(
            [("old-in-use", AllocClientStatus.RUNNING), ("old-failed", AllocClientStatus.FAILED)]
        ):
            alloc = Allocation(id=f"a{n}", job_id="web", task_group="web", deployment_id=dep_id)
            store_allocs.put_locked(txn, dataclasses.replace(alloc, client_status=client))
    return store


def test_terminal_deployments_older_than_the_threshold_are_collected() -> None:
    store = _store()
    entry = plan_gc(store.snapshot(), NOW, 3600.0, 3600.0, DEPLOYMENT_GC_THRESHOLD_S)
    assert sorted(entry.deployments) == ["old-done", "old-failed"]
    with store.write(3) as txn:
        apply_eval_delete(txn, entry)
    snap = store.snapshot()
    assert sorted(d.id for d in store_deployments.list_deployments(snap)) == [
        "old-in-use",
        "old-running",
        "young-done",
    ]
    left = {d.id for d in store_deployments.deployments_by_job(snap, "default", "web")}
    assert left == {"old-in-use", "old-running", "young-done"}  # the by-job index follows


def test_forced_gc_takes_every_terminal_deployment_whatever_its_age() -> None:
    entry = plan_gc(_store().snapshot(), NOW, 0.0, 0.0, 0.0)
    assert sorted(entry.deployments) == ["old-done", "old-failed", "young-done"]
    assert not entry.empty()


def test_a_deployment_a_plan_cancels_is_as_old_as_its_cancellation() -> None:
    """A plan's status update stamps the deployment's ModifyTime (Nomad's UpdatedAt): one made
    two hours ago and cancelled now is young for the GC."""
    store = _store()
    cancel = DeploymentStatusUpdate(
        deployment_id="old-running",
        status=DeploymentStatus.CANCELLED,
        status_description=DESC_NEWER_JOB,
        updated_at=NOW,
    )
    with store.write(3) as txn:
        apply_plan_deployment(txn, PlanEntry(deployment_updates=(cancel,)))
    d = store_deployments.get_deployment(store.snapshot(), "old-running")
    assert d is not None and d.status == DeploymentStatus.CANCELLED and d.modify_time == NOW
    entry = plan_gc(store.snapshot(), NOW, 3600.0, 3600.0, DEPLOYMENT_GC_THRESHOLD_S)
    assert "old-running" not in entry.deployments
