"""``/v1/job/:id/plan``, ``/revert``, ``/stable``, ``/scale``, ``/evaluate`` and ``/v1/scaling/policies``
(Nomad's command/agent/job_endpoint.go and scaling_endpoint.go).

Bodies and replies are Nomad's API JSON: ``{"Job": ..., "Diff": true}`` answers a
``JobPlanResponse`` (``Annotations.DesiredTGUpdates``, ``Diff``, ``FailedTGAllocs``,
``JobModifyIndex``, ``CreatedEvals``...); revert (``JobVersion``, ``EnforcePriorVersion``), scale
(``Count``, ``Target.Group``, ``Message``, ``Error``, ``Meta``, ``PolicyOverride``) and evaluate
(``EvalOptions.ForceReschedule``) answer like a register; stable (``JobVersion``, ``Stable``)
answers its ``Index``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from nomadd.agent.http.body import read_body
from nomadd.agent.http.internal_endpoint import call, envelope, query_result, write_result
from nomadd.agent.http.job_endpoint import job_from_body, register_result
from nomadd.structs.codec import to_api
from nomadd.structs.errors import NotFoundError, UnknownJobError, ValidationError
from nomadd.structs.requests.job import JobSpecificRequest
from nomadd.structs.requests.job_plan import (
    JOB_EVALUATE,
    JOB_PLAN,
    JOB_REVERT,
    JOB_SCALE,
    JOB_SCALE_STATUS,
    JOB_STABLE,
    SCALING_GET_POLICY,
    SCALING_LIST_POLICIES,
    JobEvaluateRequest,
    JobPlanRequest,
    JobRevertRequest,
    JobScaleRequest,
    JobStableRequest,
    ScalingPolicyListRequest,
    ScalingPolicyRequest,
)

if TYPE_CHECKING:
    from nomadd.agent.agent import Agent
    from nomadd.agent.http.server import Router

__all__ = ["register"]

ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time.Time: no periodic launch


def _typed(body: dict[str, Any], key: str, kind: type | tuple[type, ...], default: object) -> Any:
    value = body.get(key, default)
    if value is None:
        return default
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValidationError(f"{key}: wrong type")
    return value


async def plan_job(agent: Agent, req: web.Request) -> object:
    job, body = await job_from_body(agent, req)
    env = envelope(req)
    env["namespace"] = job.namespace
    want_diff = _typed(body, "Diff", bool, False)
    reply = await call(agent, JOB_PLAN, JobPlanRequest(job=job, diff=want_diff, **env))
    return write_result(
        reply.meta,
        {
            "JobModifyIndex": reply.job_modify_index,
            "CreatedEvals": [to_api(e) for e in reply.created_evals] or None,
            "Diff": reply.diff,
            "Annotations": reply.annotations,
            "FailedTGAllocs": {g: to_api(m) for g, m in reply.failed_tg_allocs.items()} or None,
            "NextPeriodicLaunch": ZERO_TIME,
            "Warnings": reply.warnings,
            "Index": reply.meta.index,
        },
    )


async def revert_job(agent: Agent, req: web.Request) -> object:
    body = await read_body(req)
    job_id = req.match_info["id"]
    if body.get("JobID") not in (None, job_id):
        raise ValidationError("Job ID does not match")
    version = _typed(body, "JobVersion", int, 0)
    prior = body.get("EnforcePriorVersion")
    if prior is not None and (not isinstance(prior, int) or isinstance(prior, bool)):
        raise ValidationError("EnforcePriorVersion: wrong type")
    request = JobRevertRequest(
        job_id=job_id, job_version=version, enforce_prior_version=prior, **envelope(req)
    )
    return register_result(await call(agent, JOB_REVERT, request))


async def scale_job(agent: Agent, req: web.Request) -> object:
    body = await read_body(req)
    target = _typed(body, "Target", dict, {})
    group = target.get("Group", "")
    if not isinstance(group, str):
        raise ValidationError("Target.Group: wrong type")
    count = body.get("Count")
    if count is not None and (not isinstance(count, int) or isinstance(count, bool)):
        raise ValidationError("Count: wrong type")
    request = JobScaleRequest(
        job_id=req.match_info["id"],
        group=group,
        count=count,
        message=_typed(body, "Message", str, ""),
        error=_typed(body, "Error", bool, False),
        meta_data=_typed(body, "Meta", dict, {}),
        enforce_index=_typed(body, "EnforceIndex", bool, False),
        job_modify_index=_typed(body, "JobModifyIndex", int, 0),
        **envelope(req),
    )
    return register_result(await call(agent, JOB_SCALE, request))


async def scale_status(agent: Agent, req: web.Request) -> object:
    request = JobSpecificRequest(job_id=req.match_info["id"], **envelope(req))
    reply = await call(agent, JOB_SCALE_STATUS, request)
    if reply.status is None:
        raise UnknownJobError("job not found")
    return query_result(reply.meta, reply.status)


async def evaluate_job(agent: Agent, req: web.Request) -> object:
    body = await read_body(req, optional=True)
    options = _typed(body, "EvalOptions", dict, {})
    force = options.get("ForceReschedule", False)
    if not isinstance(force, bool):
        raise ValidationError("EvalOptions.ForceReschedule: wrong type")
    request = JobEvaluateRequest(job_id=req.match_info["id"], force_reschedule=force, **envelope(req))
    return register_result(await call(agent, JOB_EVALUATE, request))


async def scaling_policies(agent: Agent, req: web.Request) -> object:
    """Nomad's ScalingPolicyListStub of each group ``scaling {}`` block (``?job=``, ``?type=``)."""
    request = ScalingPolicyListRequest(
        job=req.query.get("job", ""), type=req.query.get("type", ""), **envelope(req)
    )
    reply = await call(agent, SCALING_LIST_POLICIES, request)
    stubs = []
    for policy in reply.policies:
        full = to_api(policy)
        stubs.append({k: full[k] for k in ("ID", "Enabled", "Type", "Target", "CreateIndex", "ModifyIndex")})
    return query_result(reply.meta, stubs)


async def scaling_policy(agent: Agent, req: web.Request) -> object:
    request = ScalingPolicyRequest(policy_id=req.match_info["id"], **envelope(req))
    reply = await call(agent, SCALING_GET_POLICY, request)
    if reply.policy is None:
        raise NotFoundError("policy not found")
    return query_result(reply.meta, to_api(reply.policy))


async def stable_job(agent: Agent, req: web.Request) -> object:
    body = await read_body(req)
    job_id = req.match_info["id"]
    if body.get("JobID") not in (None, job_id):
        raise ValidationError("Job ID does not match")
    request = JobStableRequest(
        job_id=job_id,
        job_version=_typed(body, "JobVersion", int, 0),
        stable=_typed(body, "Stable", bool, False),
        **envelope(req),
    )
    reply = await call(agent, JOB_STABLE, request)
    return write_result(reply.meta, {"Index": reply.meta.index})


def register(router: Router) -> None:
    for method in ("PUT", "POST"):
        router.add(method, "/v1/job/{id}/plan", plan_job)
        router.add(method, "/v1/job/{id}/revert", revert_job)
        router.add(method, "/v1/job/{id}/scale", scale_job)
        router.add(method, "/v1/job/{id}/evaluate", evaluate_job)
        router.add(method, "/v1/job/{id}/stable", stable_job)
    router.add("GET", "/v1/job/{id}/scale", scale_status)
    router.add("GET", "/v1/scaling/policies", scaling_policies)
    router.add("GET", "/v1/scaling/policy/{id}", scaling_policy)
