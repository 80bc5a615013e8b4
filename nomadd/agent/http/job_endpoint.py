"""Jobs: ``/v1/jobs`` (list, register) and ``/v1/job/:id`` (read, register, stop/purge) with
``/allocations /evaluations /summary /versions`` (Nomad's command/agent/job_endpoint.go).

Register bodies are ``{"Job": {...}}`` in Nomad's API JSON; unknown keys are ignored as Nomad
ignores them, wrongly typed or invalid fields answer 400 naming the field. Writes answer the
reply of ``Job.Register`` / ``Job.Deregister`` with ``X-Nomad-Index`` set to the entry's index,
so a following ``?index=`` read waits for (or already sees) the scheduler's placements.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from nomadd.agent.http.internal_endpoint import call_rpc, query_args, query_result
from nomadd.agent.http.server import QueryResult, parse_query_options
from nomadd.structs.errors import UnknownJobError, ValidationError

if TYPE_CHECKING:
    from nomadd.agent.agent import Agent
    from nomadd.agent.http.server import Router

__all__ = ["read_body", "register", "write_result"]


async def read_body(req: web.Request) -> dict[str, Any]:
    if not req.can_read_body:
        raise ValidationError("Request body is empty")
    try:
        body = await req.json()
    except ValueError as err:
        raise ValidationError(f"Failed to parse request body: {err}") from None
    if not isinstance(body, dict):
        raise ValidationError("Request body must be a JSON object")
    return body


def write_result(reply: dict[str, Any]) -> QueryResult:
    return QueryResult(value=reply, index=int(reply.get("Index", 0)))


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() not in ("", "false", "0")


async def list_jobs(agent: Agent, req: web.Request) -> object:
    opts = parse_query_options(req)
    reply = await call_rpc(agent, "Job.List", query_args(opts, Prefix=opts.prefix))
    return query_result(reply)


async def register_job(agent: Agent, req: web.Request) -> object:
    body = await read_body(req)
    job = body.get("Job")
    if not isinstance(job, dict):
        raise ValidationError("Job: missing job")
    path_id = req.match_info.get("id")
    if path_id is not None and job.get("ID") not in (None, path_id):
        raise ValidationError("Job ID does not match name")
    if path_id is not None and job.get("ID") is None:
        job = {**job, "ID": path_id}
    if not job.get("Namespace"):
        job = {**job, "Namespace": req.query.get("namespace", "default") or "default"}
    reply = await call_rpc(agent, "Job.Register", {"Job": job})
    return write_result(reply)


async def get_job(agent: Agent, req: web.Request) -> object:
    opts = parse_query_options(req)
    reply = await call_rpc(agent, "Job.GetJob", query_args(opts, JobID=req.match_info["id"]))
    if reply.get("Value") is None:
        raise UnknownJobError("job not found")
    return query_result(reply)


async def deregister_job(agent: Agent, req: web.Request) -> object:
    opts = parse_query_options(req)
    args = {
        "JobID": req.match_info["id"],
        "Namespace": opts.namespace,
        "Purge": _truthy(req.query.get("purge")),
    }
    reply = await call_rpc(agent, "Job.Deregister", args)
    return write_result(reply)


def _sub(method: str, *, not_found: bool = False) -> Any:
    async def handler(agent: Agent, req: web.Request) -> object:
        opts = parse_query_options(req)
        reply = await call_rpc(agent, method, query_args(opts, JobID=req.match_info["id"]))
        if not_found and reply.get("Value") is None:
            raise UnknownJobError("job not found")
        return query_result(reply)

    return handler


def register(router: Router) -> None:
    router.add("GET", "/v1/jobs", list_jobs)
    router.add("PUT", "/v1/jobs", register_job)
    router.add("POST", "/v1/jobs", register_job)
    router.add("GET", "/v1/job/{id}", get_job)
    router.add("PUT", "/v1/job/{id}", register_job)
    router.add("POST", "/v1/job/{id}", register_job)
    router.add("DELETE", "/v1/job/{id}", deregister_job)
    router.add("GET", "/v1/job/{id}/allocations", _sub("Job.Allocations"))
    router.add("GET", "/v1/job/{id}/evaluations", _sub("Job.Evaluations"))
    router.add("GET", "/v1/job/{id}/summary", _sub("Job.Summary", not_found=True))
    router.add("GET", "/v1/job/{id}/versions", _sub("Job.GetJobVersions", not_found=True))
