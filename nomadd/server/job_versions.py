"""``Job.Plan``, version diffs, ``Job.Revert``, ``Job.Scale``, ``Job.ScaleStatus`` and
``Job.Evaluate``, ``Job.Stable`` (Nomad's job_endpoint.go).

Revert, scale and evaluate are registers of a job the server builds (an earlier version's spec,
the stored job with one group's count changed, the stored job unchanged) through
:meth:`JobEndpoint.commit`, so they share the register's Raft entry and evaluation. Revert and
scale enforce the job modify index they read, so a concurrent update is refused rather than
overwritten. Each scale request is also kept as a scaling event of its group (at most 20,
newest first), the count-less error reports of an autoscaler included; ``Job.Stable`` marks a
version stable in its own entry.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
import uuid

from nomadd.rpc import RPCRegistry
from nomadd.server.alloc_endpoint import new_eval
from nomadd.server.context import ServerContext
from nomadd.server.job_endpoint import (
    KNOWN_DRIVERS,
    JobEndpoint,
    check_enforced_index,
    check_placeable,
    current_job,
)
from nomadd.server.job_plan import dry_run
from nomadd.server.state import store_allocs, store_jobs, store_scaling, store_summaries
from nomadd.server.state.store import StateSnapshot
from nomadd.server.worker import SnapshotState
from nomadd.structs.alloc import AllocClientStatus, AllocDesiredStatus, DesiredTransition
from nomadd.structs.codec import to_api
from nomadd.structs.errors import UnknownJobError, ValidationError
from nomadd.structs.eval import EvalTrigger
from nomadd.structs.job import Job
from nomadd.structs.job_diff import job_diff
from nomadd.structs.messages import MessageType
from nomadd.structs.requests import WriteMeta
from nomadd.structs.requests.alloc import AllocTransition, AllocUpdateEntry
from nomadd.structs.requests.job import JobRegisterReply, JobSpecificRequest
from nomadd.structs.requests.job_plan import (
    JOB_EVALUATE,
    JOB_PLAN,
    JOB_REVERT,
    JOB_SCALE,
    JOB_SCALE_STATUS,
    JOB_STABLE,
    JOB_VERSION_DIFFS,
    SCALING_GET_POLICY,
    SCALING_LIST_POLICIES,
    JobEvaluateRequest,
    JobPlanReply,
    JobPlanRequest,
    JobRevertRequest,
    JobScaleRequest,
    JobScaleStatusReply,
    JobStabilityEntry,
    JobStableReply,
    JobStableRequest,
    JobVersionDiffsReply,
    ScalingEventEntry,
    ScalingPolicyListReply,
    ScalingPolicyListRequest,
    ScalingPolicyReply,
    ScalingPolicyRequest,
)
from nomadd.structs.scaling import JobScalingEvent, ScalingPolicy

__all__ = ["JobVersionsEndpoint", "group_policies", "version_diffs"]


def group_policies(job: Job) -> list[ScalingPolicy]:
    """The job's group ``scaling {}`` blocks as Nomad's ScalingPolicy objects: the ID is stable
    per (namespace, job, group), the target names the group."""
    out = []
    for tg in job.task_groups:
        if tg.scaling is None:
            continue
        target = {"Namespace": job.namespace, "Job": job.id, "Group": tg.name}
        policy_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"nomadd:scaling/{job.namespace}/{job.id}/{tg.name}"))
        out.append(
            dataclasses.replace(
                tg.scaling,
                id=policy_id,
                target=target,
                create_index=job.create_index,
                modify_index=job.job_modify_index,
            )
        )
    return out


def version_diffs(versions: tuple[Job, ...]) -> list[dict[str, object]]:
    """Each version's diff against the one before it, newest first (Nomad's ?diffs=true)."""
    return [job_diff(older, newer) for newer, older in itertools.pairwise(versions)]


class JobVersionsEndpoint:
    def __init__(self, ctx: ServerContext, jobs: JobEndpoint) -> None:
        self._ctx = ctx
        self._jobs = jobs

    def register(self, registry: RPCRegistry) -> None:
        registry.register(JOB_PLAN, self.plan, kind="write")  # on the leader: the freshest state
        registry.register(JOB_VERSION_DIFFS, self.versions, kind="read")
        registry.register(JOB_REVERT, self.revert, kind="write")
        registry.register(JOB_SCALE, self.scale, kind="write")
        registry.register(JOB_SCALE_STATUS, self.scale_status, kind="read")
        registry.register(JOB_EVALUATE, self.evaluate, kind="write")
        registry.register(JOB_STABLE, self.stable, kind="write")
        registry.register(SCALING_LIST_POLICIES, self.list_policies, kind="read")
        registry.register(SCALING_GET_POLICY, self.get_policy, kind="read")

    def _current(self, namespace: str, job_id: str) -> Job:
        job = current_job(self._ctx.store, namespace, job_id)
        if job is None:
            raise UnknownJobError(f"job not found: {job_id}")
        return job

    async def plan(self, req: JobPlanRequest) -> JobPlanReply:
        job = req.job.canonicalize()
        job.validate(KNOWN_DRIVERS, self._ctx.config.limits)
        check_placeable(self._ctx.store, job)
        snap = SnapshotState(self._ctx.store.snapshot())
        out = await dry_run(snap, job, want_diff=req.diff)
        failed = out.outcome.failed_tg_allocs if out.outcome is not None else {}
        return JobPlanReply(
            meta=WriteMeta(index=snap.latest_index()),
            job_modify_index=out.job_modify_index,
            diff=out.diff,
            annotations={"DesiredTGUpdates": out.desired, "PreemptedAllocs": None},
            failed_tg_allocs=failed,
            created_evals=out.created,
        )

    async def versions(self, req: JobSpecificRequest) -> JobVersionDiffsReply:
        def fn(snap: StateSnapshot) -> tuple[tuple[Job, ...], list[dict[str, object]]]:
            versions = store_jobs.job_versions(snap, req.namespace, req.job_id)
            return versions, version_diffs(versions)

        (versions, diffs), meta = await self._ctx.blocking.query(req, (store_jobs.TABLE,), fn)
        return JobVersionDiffsReply(meta=meta, versions=versions, diffs=diffs)

    async def revert(self, req: JobRevertRequest) -> JobRegisterReply:
        current = current_job(self._ctx.store, req.namespace, req.job_id)
        if current is None:
            raise UnknownJobError(f'job "{req.job_id}" not found')
        if req.job_version == current.version:
            raise ValidationError("can't revert to current version")
        versions = store_jobs.job_versions(self._ctx.store.snapshot(), req.namespace, req.job_id)
        target = next((v for v in versions if v.version == req.job_version), None)
        if target is None:
            raise UnknownJobError(
                f'job "{req.job_id}" in namespace "{req.namespace}" at version {req.job_version} not found'
            )
        if req.enforce_prior_version is not None and current.version != req.enforce_prior_version:
            raise ValidationError(
                f"Current job has version {current.version}; enforcing version {req.enforce_prior_version}"
            )
        reverted = target.canonicalize()  # the version's spec as it was, stop included (Nomad's copy)
        reverted.validate(KNOWN_DRIVERS, self._ctx.config.limits)
        return await self._jobs.commit(reverted, enforce_index=current.job_modify_index)

    async def scale(self, req: JobScaleRequest) -> JobRegisterReply:
        current = self._current(req.namespace, req.job_id)
        if req.enforce_index:
            check_enforced_index(current, req.job_modify_index)
        if not req.group:
            raise ValidationError("missing task group name for scaling action")
        tg = current.lookup_task_group(req.group)
        if tg is None:
            raise ValidationError(f'task group "{req.group}" specified for scaling does not exist in job')
        if req.count is None:
            if not req.error:
                raise ValidationError("scaling action must specify a count unless it reports an error")
            index = await self._record(current, req, tg.count, "")
            return JobRegisterReply(
                meta=WriteMeta(index=index), eval_id="", eval_create_index=0, job_modify_index=0
            )
        if req.error:
            raise ValidationError("scaling action should not contain count if error is true")
        if req.count < 0:
            raise ValidationError("scaling action count can't be negative")
        bounds = tg.scaling
        if bounds is not None and bounds.max is not None and req.count > bounds.max:
            raise ValidationError(
                f"group count was greater than scaling policy maximum: {req.count} > {bounds.max}"
            )
        if bounds is not None and bounds.min is not None and req.count < bounds.min:
            raise ValidationError(
                f"group count was less than scaling policy minimum: {req.count} < {bounds.min}"
            )
        groups = tuple(dataclasses.replace(g, count=req.count) if g is tg else g for g in current.task_groups)
        scaled = dataclasses.replace(current, task_groups=groups)
        scaled.validate(KNOWN_DRIVERS, self._ctx.config.limits)
        # built from the job as read: refused if another register lands first (no lost update)
        reply = await self._jobs.commit(
            scaled, EvalTrigger.JOB_SCALING, enforce_index=current.job_modify_index
        )
        await self._record(current, req, tg.count, reply.eval_id)
        return reply

    async def _record(self, job: Job, req: JobScaleRequest, previous: int, eval_id: str) -> int:
        """Keep the request as a scaling event of the group (Nomad's ScalingEvents)."""
        event = JobScalingEvent(
            time=time.time_ns(),
            count=req.count,
            previous_count=previous,
            message=req.message,
            error=req.error,
            meta=req.meta_data,
            eval_id=eval_id,
        )
        entry = ScalingEventEntry(
            namespace=job.namespace,
            job_id=job.id,
            job_create_index=job.create_index,
            group=req.group,
            event=event,
        )
        _, index = await self._ctx.propose(MessageType.SCALING_EVENT_REGISTER, entry)
        return index

    async def scale_status(self, req: JobSpecificRequest) -> JobScaleStatusReply:
        def fn(snap: StateSnapshot) -> dict[str, object] | None:
            job = store_jobs.get_job(snap, req.namespace, req.job_id)
            if job is None:
                return None
            job = store_summaries.with_status(snap, job)
            allocs = store_allocs.allocs_by_job(snap, req.namespace, req.job_id)
            events = store_scaling.events_of(snap, req.namespace, req.job_id, job.create_index)
            groups: dict[str, object] = {}
            for tg in job.task_groups:
                mine = [a for a in allocs if a.task_group == tg.name and a.job_version == job.version]
                live = [a for a in mine if not a.terminal()]
                groups[tg.name] = {
                    "Desired": tg.count,
                    "Placed": len(live),
                    "Running": sum(1 for a in live if str(a.client_status) == "running"),
                    "Healthy": 0,
                    "Unhealthy": 0,
                    "Events": [to_api(e) for e in events.get(tg.name, ())] or None,
                }
            return {
                "JobID": job.id,
                "Namespace": job.namespace,
                "JobCreateIndex": job.create_index,
                "JobModifyIndex": job.job_modify_index,
                "JobStopped": job.stop,
                "TaskGroups": groups,
            }

        tables = (store_jobs.TABLE, store_allocs.TABLE, store_scaling.TABLE)
        status, meta = await self._ctx.blocking.query(req, tables, fn)
        return JobScaleStatusReply(meta=meta, status=status)

    async def evaluate(self, req: JobEvaluateRequest) -> JobRegisterReply:
        """A new evaluation of the job; ``force_reschedule`` also marks its failed allocations
        to be replaced now, whatever their reschedule policy says (Nomad's ForceReschedule),
        in the same entry as the evaluation."""
        current = self._current(req.namespace, req.job_id)
        if current.is_periodic():  # Nomad's messages: a template has no evaluations of its own
            raise ValidationError("can't evaluate periodic job")
        if current.is_parameterized():
            raise ValidationError("can't evaluate parameterized job")
        if not req.force_reschedule:
            return await self._jobs.commit(current)
        ev = new_eval(
            job_id=current.id,
            namespace=current.namespace,
            job_type=str(current.type),
            priority=current.priority,
            trigger=EvalTrigger.JOB_REGISTER,
            now_ns=time.time_ns(),
            job_modify_index=current.job_modify_index,
        )
        allocs = store_allocs.allocs_by_job(self._ctx.store.snapshot(), current.namespace, current.id)
        force = DesiredTransition(force_reschedule=True)
        transitions = tuple(
            AllocTransition(alloc_id=a.id, transition=force)
            for a in allocs
            if a.client_status == AllocClientStatus.FAILED
            and a.desired_status == AllocDesiredStatus.RUN
            and not a.next_allocation
        )
        entry = AllocUpdateEntry(transitions=transitions, evals=(ev,))
        _, index = await self._ctx.propose(MessageType.ALLOC_UPDATE, entry)
        return JobRegisterReply(
            meta=WriteMeta(index=index),
            eval_id=ev.id,
            eval_create_index=index,
            job_modify_index=current.job_modify_index,
        )

    async def stable(self, req: JobStableRequest) -> JobStableReply:
        self._current(req.namespace, req.job_id)  # 404 for a job that does not exist
        entry = JobStabilityEntry(
            namespace=req.namespace, job_id=req.job_id, version=req.job_version, stable=req.stable
        )
        found, index = await self._ctx.propose(MessageType.JOB_STABILITY, entry)
        if not found:
            raise UnknownJobError(
                f'job "{req.job_id}" in namespace "{req.namespace}" at version {req.job_version} not found'
            )
        return JobStableReply(meta=WriteMeta(index=index))

    async def list_policies(self, req: ScalingPolicyListRequest) -> ScalingPolicyListReply:
        def fn(snap: StateSnapshot) -> tuple[ScalingPolicy, ...]:
            out: list[ScalingPolicy] = []
            for job in store_jobs.list_jobs(snap, req.namespace):
                if req.job and job.id != req.job:
                    continue
                out += [p for p in group_policies(job) if not req.type or p.type == req.type]
            return tuple(out)

        policies, meta = await self._ctx.blocking.query(req, (store_jobs.TABLE,), fn)
        return ScalingPolicyListReply(meta=meta, policies=policies)

    async def get_policy(self, req: ScalingPolicyRequest) -> ScalingPolicyReply:
        def fn(snap: StateSnapshot) -> ScalingPolicy | None:
            for job in store_jobs.list_jobs(snap):
                for policy in group_policies(job):
                    if policy.id == req.policy_id:
                        return policy
            return None

        policy, meta = await self._ctx.blocking.query(req, (store_jobs.TABLE,), fn)
        return ScalingPolicyReply(meta=meta, policy=policy)
