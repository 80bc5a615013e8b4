"""``Deployment.*`` RPCs (Nomad's deployment_endpoint.go).

Reads: ``GetDeployment`` (by ID or unique prefix), ``List`` (of a namespace, or of one job:
newest first; ``latest`` for ``/v1/job/:id/deployment``) and ``Allocations``. Writes go through
one ``DEPLOYMENT_UPDATE`` entry each: ``Fail`` (with the groups' auto-revert, as Nomad's),
``Pause`` (pause or resume), ``Promote`` (refused while a canary to promote is not healthy),
``SetAllocHealth`` and ``Unblock`` (only for multiregion deployments, which nomadd has not: a
clear 400). Each write but pause makes an evaluation, so the scheduler acts at once.
"""

from __future__ import annotations

import time

from nomadd.rpc import RPCRegistry
from nomadd.server.context import ServerContext
from nomadd.server.deployment_watcher import (
    DeploymentWatcher,
    deployment_eval,
    fail_entry,
    healthy_canaries,
)
from nomadd.server.state import store_allocs, store_deployments, store_jobs
from nomadd.server.state.store import StateSnapshot
from nomadd.server.state.store_evals import ApplyResult
from nomadd.structs.deployment import (
    DESC_FAILED_BY_USER,
    DESC_NEEDS_PROMOTION,
    DESC_PAUSED,
    DESC_RUNNING,
    Deployment,
    DeploymentStatus,
    DeploymentStatusUpdate,
)
from nomadd.structs.errors import NotFoundError, ValidationError
from nomadd.structs.eval import Evaluation
from nomadd.structs.messages import MessageType
from nomadd.structs.requests import WriteMeta
from nomadd.structs.requests.deployment import (
    DEPLOYMENT_ALLOC_HEALTH,
    DEPLOYMENT_ALLOCATIONS,
    DEPLOYMENT_FAIL,
    DEPLOYMENT_GET,
    DEPLOYMENT_LIST,
    DEPLOYMENT_PAUSE,
    DEPLOYMENT_PROMOTE,
    DEPLOYMENT_UNBLOCK,
    AllocHealthSet,
    DeploymentAllocHealthRequest,
    DeploymentAllocsReply,
    DeploymentGetReply,
    DeploymentListReply,
    DeploymentListRequest,
    DeploymentPauseRequest,
    DeploymentPromote,
    DeploymentPromoteRequest,
    DeploymentSpecificRequest,
    DeploymentUpdateEntry,
    DeploymentUpdateReply,
)
from nomadd.structs.timeutil import format_time

__all__ = ["DeploymentEndpoint", "find_deployment"]

TABLES = (*store_deployments.TABLES,)
ALLOC_TABLES = (*store_deployments.TABLES, *store_allocs.TABLES)
JOB_TABLES = (*store_deployments.TABLES, store_jobs.TABLE)


def find_deployment(snap: StateSnapshot, dep_id: str, namespace: str = "*") -> Deployment | None:
    """By full ID, or by a prefix that matches exactly one deployment (of ``namespace``)."""
    d = store_deployments.get_deployment(snap, dep_id)
    if d is None and dep_id:
        matches = store_deployments.list_deployments(snap, namespace, dep_id)
        d = matches[0] if len(matches) == 1 else None
    if d is not None and namespace not in ("*", d.namespace):
        return None
    return d


class DeploymentEndpoint:
    def __init__(self, ctx: ServerContext) -> None:
        self._ctx = ctx
        self.watcher = DeploymentWatcher(ctx)

    def register(self, registry: RPCRegistry) -> None:
        """The RPCs, and the watcher as a leader component (it runs while this server leads)."""
        self._ctx.register_leader_component(self.watcher)
        registry.register(DEPLOYMENT_GET, self.get, kind="read")
        registry.register(DEPLOYMENT_LIST, self.list, kind="read")
        registry.register(DEPLOYMENT_ALLOCATIONS, self.allocations, kind="read")
        registry.register(DEPLOYMENT_FAIL, self.fail, kind="write")
        registry.register(DEPLOYMENT_PAUSE, self.pause, kind="write")
        registry.register(DEPLOYMENT_PROMOTE, self.promote, kind="write")
        registry.register(DEPLOYMENT_ALLOC_HEALTH, self.set_alloc_health, kind="write")
        registry.register(DEPLOYMENT_UNBLOCK, self.unblock, kind="write")

    # ---- reads ---------------------------------------------------------------------------
    async def get(self, req: DeploymentSpecificRequest) -> DeploymentGetReply:
        d, meta = await self._ctx.blocking.query(
            req, TABLES, lambda snap: find_deployment(snap, req.deployment_id, req.namespace)
        )
        return DeploymentGetReply(meta=meta, deployment=d)

    async def list(self, req: DeploymentListRequest) -> DeploymentListReply:
        def fn(snap: StateSnapshot) -> tuple[Deployment, ...]:
            if req.job_id:
                found = store_deployments.deployments_by_job(snap, req.namespace, req.job_id)
                return tuple(found[:1] if req.latest else found)
            return tuple(store_deployments.list_deployments(snap, req.namespace, req.prefix))

        tables = JOB_TABLES if req.job_id else TABLES  # a job's: never older than the job's index
        deployments, meta = await self._ctx.blocking.query(req, tables, fn)
        return DeploymentListReply(meta=meta, deployments=deployments)

    async def allocations(self, req: DeploymentSpecificRequest) -> DeploymentAllocsReply:
        def fn(snap: StateSnapshot) -> tuple[object, ...]:
            d = find_deployment(snap, req.deployment_id, req.namespace)
            if d is None:
                return ()
            allocs = store_allocs.allocs_by_job(snap, d.namespace, d.job_id)
            return tuple(
                a.stub() for a in sorted(allocs, key=lambda a: a.create_index) if a.deployment_id == d.id
            )

        stubs, meta = await self._ctx.blocking.query(req, ALLOC_TABLES, fn)
        return DeploymentAllocsReply(meta=meta, allocations=stubs)  # type: ignore[arg-type]

    # ---- writes --------------------------------------------------------------------------
    def _active(self, dep_id: str, namespace: str) -> tuple[StateSnapshot, Deployment]:
        snap = self._ctx.store.snapshot()
        d = find_deployment(snap, dep_id, namespace)
        if d is None:
            raise NotFoundError(f"deployment not found: {dep_id}")
        if not d.active():
            raise ValidationError(f"can't update terminal deployment with status {d.status!r}")
        return snap, d

    async def _commit(
        self, entry: DeploymentUpdateEntry, reverted: int | None = None
    ) -> DeploymentUpdateReply:
        result, index = await self._ctx.propose(MessageType.DEPLOYMENT_UPDATE, entry)
        assert isinstance(result, ApplyResult)
        return DeploymentUpdateReply(
            meta=WriteMeta(index=index),
            eval_id=entry.evals[0].id if entry.evals else "",
            eval_create_index=index if entry.evals else 0,
            deployment_modify_index=index,
            reverted_job_version=reverted,
        )

    async def fail(self, req: DeploymentSpecificRequest) -> DeploymentUpdateReply:
        snap, d = self._active(req.deployment_id, req.namespace)
        revert = any(s.auto_revert for s in d.task_groups.values())
        entry, version = fail_entry(snap, d, DESC_FAILED_BY_USER, time.time_ns(), revert=revert)
        return await self._commit(entry, version)

    async def pause(self, req: DeploymentPauseRequest) -> DeploymentUpdateReply:
        snap, d = self._active(req.deployment_id, req.namespace)
        now = time.time_ns()
        evals: tuple[Evaluation, ...] = ()
        if req.pause:
            status, desc = DeploymentStatus.PAUSED, DESC_PAUSED
        else:
            desc = DESC_NEEDS_PROMOTION if d.requires_promotion() else DESC_RUNNING
            job = store_jobs.get_job(snap, d.namespace, d.job_id)
            status, evals = DeploymentStatus.RUNNING, (deployment_eval(d, job, now),)
        entry = DeploymentUpdateEntry(
            status_updates=(
                DeploymentStatusUpdate(deployment_id=d.id, status=status, status_description=desc),
            ),
            evals=evals,
            time_ns=now,
        )
        return await self._commit(entry)

    async def promote(self, req: DeploymentPromoteRequest) -> DeploymentUpdateReply:
        snap, d = self._active(req.deployment_id, req.namespace)
        if d.status == DeploymentStatus.PAUSED:
            raise ValidationError("can't promote a paused deployment")
        groups = [
            n for n, s in d.task_groups.items() if s.desired_canaries > 0 and (req.all or n in req.groups)
        ]
        unknown = [g for g in req.groups if g not in d.task_groups]
        if unknown:
            raise ValidationError(f"deployment has no task group {unknown[0]!r}")
        if not groups:
            raise ValidationError("no canaries to promote")
        for name in groups:
            want = d.task_groups[name].desired_canaries
            have = healthy_canaries(snap, d, name)
            if have < want:
                raise ValidationError(f'Task group "{name}" has {have}/{want} healthy allocations')
        now = time.time_ns()
        job = store_jobs.get_job(snap, d.namespace, d.job_id)
        entry = DeploymentUpdateEntry(
            promotions=(DeploymentPromote(deployment_id=d.id, all=req.all, groups=tuple(groups)),),
            status_updates=(
                DeploymentStatusUpdate(
                    deployment_id=d.id, status=DeploymentStatus.RUNNING, status_description=DESC_RUNNING
                ),
            ),
            evals=(deployment_eval(d, job, now),),
            time_ns=now,
        )
        return await self._commit(entry)

    async def set_alloc_health(self, req: DeploymentAllocHealthRequest) -> DeploymentUpdateReply:
        snap, d = self._active(req.deployment_id, req.namespace)
        if not req.healthy_allocation_ids and not req.unhealthy_allocation_ids:
            raise ValidationError("must specify at least one healthy/unhealthy allocation ID")
        for alloc_id in (*req.healthy_allocation_ids, *req.unhealthy_allocation_ids):
            alloc = store_allocs.get_alloc(snap, alloc_id)
            if alloc is None or alloc.deployment_id != d.id:
                raise ValidationError(f"allocation {alloc_id!r} is not part of deployment {d.id!r}")
        now = time.time_ns()
        job = store_jobs.get_job(snap, d.namespace, d.job_id)
        entry = DeploymentUpdateEntry(
            alloc_health=(
                AllocHealthSet(
                    deployment_id=d.id,
                    healthy=req.healthy_allocation_ids,
                    unhealthy=req.unhealthy_allocation_ids,
                    timestamp=format_time(now),
                ),
            ),
            evals=(deployment_eval(d, job, now),),
            time_ns=now,
        )
        return await self._commit(entry)

    async def unblock(self, req: DeploymentSpecificRequest) -> DeploymentUpdateReply:
        self._active(req.deployment_id, req.namespace)
        raise ValidationError("deployment must be multiregion to be unblocked")
