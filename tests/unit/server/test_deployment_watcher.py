"""The leader's deployment watcher decides from the store: success (and a stable version),
failure on an unhealthy allocation or a missed progress deadline (auto-revert to the last stable
version), auto-promotion, and one evaluation per change of the allocations' health. Its entries
go through the real FSM (``DEPLOYMENT_UPDATE``), and the deployment's counters move there."""

from __future__ import annotations

import dataclasses
from typing import Any, cast

from nomadd.scheduler.testing import mock_job
from nomadd.server.context import ServerContext
from nomadd.server.deployment_watcher import DeploymentWatcher
from nomadd.server.fsm.deployment import apply_deployment_update, mark_stable_locked
from nomadd.server.state import store_allocs, store_deployments, store_jobs
from nomadd.server.state.store import StateStore
from nomadd.structs.alloc import Allocation, AllocClientStatus
from nomadd.structs.deployment import (
    DESC_PROGRESS_DEADLINE,
    AllocDeploymentStatus,
    Deployment,
    DeploymentState,
    DeploymentStatus,
)
from nomadd.structs.job import Job
from nomadd.structs.requests.deployment import DeploymentUpdateEntry, JobStable
from nomadd.structs.timeutil import NS_PER_S, format_time

NOW = 1_800_000_000 * NS_PER_S


class World:
    def __init__(self) -> None:
        self.store = StateStore()
        self.index = 1
        self.watcher = DeploymentWatcher(cast(ServerContext, None))

    def write(self, fn: Any) -> None:
        self.index += 1
        with self.store.write(self.index) as txn:
            fn(txn)

    def job(self, env: str) -> Job:
        base = mock_job("web", count=2)
        tg = base.task_groups[0]
        task = dataclasses.replace(tg.tasks[0], env={"V": env})
        job = dataclasses.replace(base, task_groups=(dataclasses.replace(tg, tasks=(task,)),))
        out: list[Job] = []
        self.write(lambda txn: out.append(store_jobs.upsert_job_locked(txn, job, NOW)[0]))
        return out[0]

    def deployment(self, job: Job, **state: Any) -> Deployment:
        groups = {"web": DeploymentState(desired_total=2, progress_deadline=60 * NS_PER_S, **state)}
        d = Deployment(id=f"d{job.version}", job_id=job.id, job_version=job.version, task_groups=groups)
        self.write(lambda txn: store_deployments.put_locked(txn, d, NOW))
        return self.get(d.id)

    def alloc(self, d: Deployment, n: int, *, canary: bool = False) -> Allocation:
        a = Allocation(
            id=f"{d.id}-a{n}",
            name=f"web.web[{n}]",
            job_id=d.job_id,
            task_group="web",
            deployment_id=d.id,
            client_status=AllocClientStatus.RUNNING,
            deployment_status=AllocDeploymentStatus(canary=canary),
        )
        self.write(lambda txn: store_allocs.put_locked(txn, a))
        return a

    def health(self, a: Allocation, healthy: bool) -> None:
        canary = a.deployment_status is not None and a.deployment_status.canary
        status = AllocDeploymentStatus(healthy=healthy, timestamp=format_time(NOW), canary=canary)
        self.write(lambda txn: store_allocs.put_locked(txn, dataclasses.replace(a, deployment_status=status)))

    def get(self, dep_id: str) -> Deployment:
        d = store_deployments.get_deployment(self.store.snapshot(), dep_id)
        assert d is not None
        return d

    def decide(self, dep_id: str, now: int = NOW) -> DeploymentUpdateEntry | None:
        return self.watcher.decide(self.store.snapshot(), self.get(dep_id), now)

    def apply(self, entry: DeploymentUpdateEntry) -> None:
        self.write(lambda txn: apply_deployment_update(txn, entry))


def test_counters_move_with_the_allocations_and_success_marks_the_version_stable() -> None:
    w = World()
    job = w.job("1")
    d = w.deployment(job)
    a0, a1 = w.alloc(d, 0), w.alloc(d, 1)
    assert w.get(d.id).task_groups["web"].placed_allocs == 2
    first = w.decide(d.id)
    assert first is not None and first.evals and not first.status_updates  # first look: one eval
    assert w.decide(d.id) is None  # nothing changed since
    w.health(a0, True)
    state = w.get(d.id).task_groups["web"]
    assert state.healthy_allocs == 1
    assert state.require_progress_by == format_time(NOW + 60 * NS_PER_S)
    entry = w.decide(d.id)
    assert entry is not None and len(entry.evals) == 1  # the scheduler places the next batch
    w.health(a1, True)
    entry = w.decide(d.id)
    assert entry is not None
    assert [u.status for u in entry.status_updates] == [DeploymentStatus.SUCCESSFUL]
    w.apply(entry)
    assert w.get(d.id).status == DeploymentStatus.SUCCESSFUL
    assert store_jobs.get_job(w.store.snapshot(), "default", "web").stable  # type: ignore[union-attr]


def test_unhealthy_allocation_fails_and_auto_reverts_to_the_stable_version() -> None:
    w = World()
    v0 = w.job("1")
    w.write(lambda txn: mark_stable_locked(txn, JobStable(namespace="default", job_id="web", version=0)))
    v1 = w.job("2")
    d = w.deployment(v1, auto_revert=True)
    w.health(w.alloc(d, 0), False)
    entry = w.decide(d.id)
    assert entry is not None and entry.job is not None and entry.evals
    assert "rolling back to job version 0" in entry.status_updates[0].status_description
    w.apply(entry)
    assert w.get(d.id).status == DeploymentStatus.FAILED
    job = store_jobs.get_job(w.store.snapshot(), "default", "web")
    assert job is not None and job.version == 2 and job.spec_equal(dataclasses.replace(v0, stable=False))


def test_no_stable_version_fails_without_revert_and_progress_deadline_fails() -> None:
    w = World()
    d = w.deployment(w.job("1"), auto_revert=True)
    w.health(w.alloc(d, 0), False)
    entry = w.decide(d.id)
    assert entry is not None and entry.job is None
    assert entry.status_updates[0].status_description.endswith("no stable job version to auto revert to")

    w2 = World()
    d2 = w2.deployment(w2.job("1"), require_progress_by=format_time(NOW + NS_PER_S))
    w2.alloc(d2, 0)
    assert w2.decide(d2.id, NOW) is not None  # the first look's eval
    late = w2.decide(d2.id, NOW + 2 * NS_PER_S)
    assert late is not None and late.status_updates[0].status_description == DESC_PROGRESS_DEADLINE


def test_auto_promote_once_the_canaries_are_healthy() -> None:
    w = World()
    d = w.deployment(w.job("1"), desired_canaries=1, auto_promote=True)
    canary = w.alloc(d, 0, canary=True)
    assert w.get(d.id).task_groups["web"].placed_canaries == (canary.id,)
    first = w.decide(d.id)
    assert first is not None and not first.promotions
    w.health(canary, True)
    entry = w.decide(d.id)
    assert entry is not None and entry.promotions
    w.apply(entry)
    assert w.get(d.id).task_groups["web"].promoted


def test_deployments_survive_a_snapshot_restore() -> None:
    w = World()
    d = w.deployment(w.job("1"))
    w.alloc(d, 0)
    restored = StateStore()
    restored.restore(w.store.dump())
    snap = restored.snapshot()
    assert store_deployments.get_deployment(snap, d.id) == w.get(d.id)
    assert store_deployments.latest_by_job(snap, "default", "web") == w.get(d.id)


def test_entries_decode_on_a_follower_as_the_leader_applied_them() -> None:
    from nomadd.server.fsm.dispatch import entry_kinds
    from nomadd.structs.messages import MessageType
    from nomadd.structs.requests.plan import PlanEntry, PlanResultsEntry

    w = World()
    v1 = w.job("1")
    d = w.deployment(v1, desired_canaries=1)
    canary = w.alloc(d, 0, canary=True)
    w.health(canary, True)
    entry = w.decide(d.id)
    assert entry is not None
    kinds = entry_kinds()
    upd = kinds[MessageType.DEPLOYMENT_UPDATE]
    full = dataclasses.replace(
        entry, job=v1, stable=(JobStable(namespace="default", job_id="web", version=1),)
    )
    assert upd.decode(upd.encode(full)) == full
    plan = kinds[MessageType.PLAN_RESULTS]
    placed = dataclasses.replace(canary, deployment_status=AllocDeploymentStatus(canary=True))
    results = PlanResultsEntry(plans=(PlanEntry(job=None, placements=(placed,), deployment=w.get(d.id)),))
    assert plan.decode(plan.encode(results)) == results


def test_ticks_follow_the_running_deployments_from_the_changed_rows() -> None:
    """The watcher keeps the running deployments from the rows written since its last tick (not
    a scan of every deployment kept): one appearing, stopping, running again and deleted is
    watched exactly while it runs, and gets its evaluation as a full scan would give it."""
    import asyncio

    from tests.unit.server.fakes import wait_until

    w = World()
    proposed: list[str] = []

    class Ctx:
        store = w.store

        async def propose(self, msg_type: int, entry: DeploymentUpdateEntry) -> tuple[None, int]:
            proposed.extend(e.deployment_id for e in entry.evals)
            return None, w.index

    watcher = DeploymentWatcher(cast(ServerContext, Ctx()))

    def running() -> set[str]:
        rows = w.store.snapshot().table(store_deployments.TABLE).values()
        return {d.id for d in rows if d.status == DeploymentStatus.RUNNING}

    def put(d: Deployment, status: DeploymentStatus) -> None:
        w.write(lambda txn: store_deployments.put_locked(txn, dataclasses.replace(d, status=status), NOW))

    async def step(expect: list[str]) -> None:
        assert watcher._running is not None
        await wait_until(lambda: set(watcher._running.rows) == running(), 5, f"watching {running()}")
        await asyncio.sleep(0.5)  # a couple of ticks
        assert proposed == expect
        proposed.clear()

    async def body() -> None:
        d0 = w.deployment(w.job("a"))
        watcher.set_enabled(True)
        await step(["d0"])
        d1 = w.deployment(w.job("b"))
        await step(["d1"])
        put(d0, DeploymentStatus.CANCELLED)
        await step([])
        put(d0, DeploymentStatus.RUNNING)
        await step(["d0"])
        w.write(lambda txn: store_deployments.delete_locked(txn, [d1.id]))
        await step([])
        assert watcher._running is not None and set(watcher._running.rows) == {"d0"}
        watcher.set_enabled(False)
        await watcher.shutdown()

    asyncio.run(body())
