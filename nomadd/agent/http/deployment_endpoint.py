"""Deployments: ``/v1/deployments``, ``/v1/deployment/:id``, ``/v1/deployment/allocations/:id``,
``/v1/deployment/{fail,pause,promote,allocation-health,unblock}/:id`` and the job's
``/v1/job/:id/deployment`` (latest, or ``null``) and ``/v1/job/:id/deployments`` (newest first),
as Nomad's command/agent/deployment_endpoint.go. Writes answer Nomad's
``DeploymentUpdateResponse`` (``EvalID``, ``EvalCreateIndex``, ``DeploymentModifyIndex``,
``RevertedJobVersion``, ``Index``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from nomadd.agent.http.body import read_body
from nomadd.agent.http.internal_endpoint import call, envelope, query_result, write_result
from nomadd.agent.http.server import parse_query_options
from nomadd.structs.codec import to_api
from nomadd.structs.errors import NotFoundError, ValidationError
from nomadd.structs.requests.deployment import (
    DEPLOYMENT_ALLOC_HEALTH,
    DEPLOYMENT_ALLOCATIONS,
    DEPLOYMENT_FAIL,
    DEPLOYMENT_GET,
    DEPLOYMENT_LIST,
    DEPLOYMENT_PAUSE,
    DEPLOYMENT_PROMOTE,
    DEPLOYMENT_UNBLOCK,
    DeploymentAllocHealthRequest,
    DeploymentListRequest,
    DeploymentPauseRequest,
    DeploymentPromoteRequest,
    DeploymentSpecificRequest,
    DeploymentUpdateReply,
)

if TYPE_CHECKING:
    from nomadd.agent.agent import Agent
    from nomadd.agent.http.server import Router

__all__ = ["register"]


async def list_deployments(agent: Agent, req: web.Request) -> object:
    opts = parse_query_options(req)
    reply = await call(
        agent, DEPLOYMENT_LIST, DeploymentListRequest(prefix=opts.prefix, **envelope(req, opts))
    )
    return query_result(reply.meta, [to_api(d) for d in reply.deployments])


async def get_deployment(agent: Agent, req: web.Request) -> object:
    request = DeploymentSpecificRequest(deployment_id=req.match_info["id"], **envelope(req))
    reply = await call(agent, DEPLOYMENT_GET, request)
    if reply.deployment is None:
        raise NotFoundError("deployment not found")
    return query_result(reply.meta, to_api(reply.deployment))


async def deployment_allocs(agent: Agent, req: web.Request) -> object:
    request = DeploymentSpecificRequest(deployment_id=req.match_info["id"], **envelope(req))
    reply = await call(agent, DEPLOYMENT_ALLOCATIONS, request)
    return query_result(reply.meta, [to_api(a) for a in reply.allocations])


async def job_deployments(agent: Agent, req: web.Request) -> object:
    request = DeploymentListRequest(job_id=req.match_info["id"], **envelope(req))
    reply = await call(agent, DEPLOYMENT_LIST, request)
    return query_result(reply.meta, [to_api(d) for d in reply.deployments])


async def job_latest_deployment(agent: Agent, req: web.Request) -> object:
    request = DeploymentListRequest(job_id=req.match_info["id"], latest=True, **envelope(req))
    reply = await call(agent, DEPLOYMENT_LIST, request)
    return query_result(reply.meta, to_api(reply.deployments[0]) if reply.deployments else None)


def _update_result(reply: DeploymentUpdateReply) -> object:
    value: dict[str, Any] = {
        "EvalID": reply.eval_id,
        "EvalCreateIndex": reply.eval_create_index,
        "DeploymentModifyIndex": reply.deployment_modify_index,
        "RevertedJobVersion": reply.reverted_job_version,
        "Index": reply.meta.index,
    }
    return write_result(reply.meta, value)


def _bool(body: dict[str, Any], key: str) -> bool:
    value = body.get(key, False)
    if not isinstance(value, bool):
        raise ValidationError(f"{key}: must be a boolean")
    return value


def _ids(body: dict[str, Any], key: str) -> tuple[str, ...]:
    value = body.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationError(f"{key}: must be a list of strings")
    return tuple(value)


async def fail(agent: Agent, req: web.Request) -> object:
    request = DeploymentSpecificRequest(deployment_id=req.match_info["id"], **envelope(req))
    return _update_result(await call(agent, DEPLOYMENT_FAIL, request))


async def unblock(agent: Agent, req: web.Request) -> object:
    request = DeploymentSpecificRequest(deployment_id=req.match_info["id"], **envelope(req))
    return _update_result(await call(agent, DEPLOYMENT_UNBLOCK, request))


async def pause(agent: Agent, req: web.Request) -> object:
    body = await read_body(req, optional=True)
    request = DeploymentPauseRequest(
        deployment_id=req.match_info["id"], pause=_bool(body, "Pause"), **envelope(req)
    )
    return _update_result(await call(agent, DEPLOYMENT_PAUSE, request))


async def promote(agent: Agent, req: web.Request) -> object:
    body = await read_body(req, optional=True)
    request = DeploymentPromoteRequest(
        deployment_id=req.match_info["id"],
        all=_bool(body, "All"),
        groups=_ids(body, "Groups"),
        **envelope(req),
    )
    return _update_result(await call(agent, DEPLOYMENT_PROMOTE, request))


async def alloc_health(agent: Agent, req: web.Request) -> object:
    body = await read_body(req)
    request = DeploymentAllocHealthRequest(
        deployment_id=req.match_info["id"],
        healthy_allocation_ids=_ids(body, "HealthyAllocationIDs"),
        unhealthy_allocation_ids=_ids(body, "UnhealthyAllocationIDs"),
        **envelope(req),
    )
    return _update_result(await call(agent, DEPLOYMENT_ALLOC_HEALTH, request))


def register(router: Router) -> None:
    router.add("GET", "/v1/deployments", list_deployments)
    router.add("GET", "/v1/deployment/{id}", get_deployment)
    router.add("GET", "/v1/deployment/allocations/{id}", deployment_allocs)
    for name, handler in (
        ("fail", fail),
        ("pause", pause),
        ("promote", promote),
        ("allocation-health", alloc_health),
        ("unblock", unblock),
    ):
        router.add("PUT", f"/v1/deployment/{name}/{{id}}", handler)
        router.add("POST", f"/v1/deployment/{name}/{{id}}", handler)
    router.add("GET", "/v1/job/{id}/deployment", job_latest_deployment)
    router.add("GET", "/v1/job/{id}/deployments", job_deployments)
