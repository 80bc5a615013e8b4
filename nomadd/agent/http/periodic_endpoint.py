"""``/v1/job/:id/periodic/force`` and ``/v1/job/:id/dispatch`` (Nomad's command/agent/job_endpoint.go
periodicForceRequest and jobDispatchRequest).

Dispatch bodies are Nomad's ``JobDispatchRequest``: ``{"JobID", "Payload" (base64), "Meta",
"IdPrefixTemplate", "Priority"}``; the idempotency token is the ``?idempotency_token=`` query
parameter (Nomad's WriteRequest) or an ``IdempotencyToken`` body key (``idempotency_token``:
python-nomad's spelling, which Nomad itself would ignore).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from nomadd.agent.http.internal_endpoint import call, envelope, write_result
from nomadd.agent.http.server import read_body
from nomadd.structs.errors import ValidationError
from nomadd.structs.periodic import DISPATCH_PAYLOAD_SIZE_LIMIT
from nomadd.structs.requests.periodic import (
    JOB_DISPATCH,
    PERIODIC_FORCE,
    JobDispatchRequest,
    PeriodicForceRequest,
)

if TYPE_CHECKING:
    from nomadd.agent.agent import Agent
    from nomadd.agent.http.server import Router

__all__ = ["register"]

# base64 of the largest payload, with room for the rest of the request
_MAX_BODY = DISPATCH_PAYLOAD_SIZE_LIMIT * 4 // 3 + 64 * 1024


async def periodic_force(agent: Agent, req: web.Request) -> object:
    request = PeriodicForceRequest(job_id=req.match_info["id"], **envelope(req))
    reply = await call(agent, PERIODIC_FORCE, request)
    return write_result(
        reply.meta,
        {"EvalID": reply.eval_id, "EvalCreateIndex": reply.eval_create_index, "Index": reply.meta.index},
    )


def _str(body: dict[str, object], key: str) -> str:
    value = body.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationError(f"{key}: expected string")
    return value


def _meta(body: dict[str, object]) -> dict[str, str]:
    meta = body.get("Meta")
    if meta is None:
        return {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise ValidationError("Meta: expected an object of strings")
    return meta


async def dispatch(agent: Agent, req: web.Request) -> object:
    body = await read_body(req, optional=True, max_bytes=_MAX_BODY, what="dispatch request")
    job_id = req.match_info["id"]
    if body.get("JobID") not in (None, "", job_id):
        raise ValidationError("Job ID does not match")
    priority = body.get("Priority") or 0
    if not isinstance(priority, int) or isinstance(priority, bool) or abs(priority) > 2**31:
        raise ValidationError("Priority: expected an integer between 1 and 100")
    request = JobDispatchRequest(
        job_id=job_id,
        payload=_str(body, "Payload"),
        meta=_meta(body),
        idempotency_token=req.query.get("idempotency_token", "")
        or _str(body, "IdempotencyToken")
        or _str(body, "idempotency_token"),  # where python-nomad puts it
        id_prefix_template=_str(body, "IdPrefixTemplate"),
        priority=priority,
        **envelope(req),
    )
    reply = await call(agent, JOB_DISPATCH, request)
    return write_result(
        reply.meta,
        {
            "DispatchedJobID": reply.dispatched_job_id,
            "EvalID": reply.eval_id,
            "EvalCreateIndex": reply.eval_create_index,
            "JobCreateIndex": reply.job_create_index,
            "Index": reply.meta.index,
        },
    )


def register(router: Router) -> None:
    router.add("PUT", "/v1/job/{id}/periodic/force", periodic_force)
    router.add("POST", "/v1/job/{id}/periodic/force", periodic_force)
    router.add("PUT", "/v1/job/{id}/dispatch", dispatch)
    router.add("POST", "/v1/job/{id}/dispatch", dispatch)
