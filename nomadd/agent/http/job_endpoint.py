"""Jobs: ``/v1/jobs`` (list, register) and ``/v1/job/:id`` (read, register, stop/purge) with
``/allocations /evaluations /summary /versions`` (``/deployments``: deployment_endpoint.py; Nomad's
command/agent/job_endpoint.go).

Register bodies are ``{"Job": {...}}`` in Nomad's API JSON: here, and only here, they become a
:class:`Job` (unknown keys are ignored as Nomad ignores them; wrongly typed or invalid fields
answer 400 naming the field), and replies become API JSON again. Writes answer with
``X-Nomad-Index`` set to the entry's index, so a following ``?index=`` read waits for (or
already sees) the scheduler's placements.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from aiohttp import web

from nomadd.agent.http.internal_endpoint import call, envelope, query_result, write_result
from nomadd.agent.http.params import query_flag
from nomadd.agent.http.server import parse_query_options, read_body
from nomadd.structs.codec import from_api, to_api
from nomadd.structs.errors import UnknownJobError, ValidationError
from nomadd.structs.job import Job
from nomadd.structs.job_sizes import check_api_sizes
from nomadd.structs.nomad_api import check_supported
from nomadd.structs.requests.job import (
    JOB_ALLOCATIONS,
    JOB_DEREGISTER,
    JOB_EVALUATIONS,
    JOB_GET,
    JOB_LIST,
    JOB_REGISTER,
    JOB_SUMMARY,
    JOB_VERSIONS,
    JobDeregisterRequest,
    JobListRequest,
    JobRegisterReply,
    JobRegisterRequest,
    JobSpecificRequest,
)
from nomadd.structs.requests.job_plan import JOB_VERSION_DIFFS

if TYPE_CHECKING:
    from nomadd.agent.agent import Agent
    from nomadd.agent.http.server import Router

__all__ = ["job_from_body", "register", "register_result"]

LARGE_JOB_BYTES = 64 * 1024  # jobs bigger than this are converted from JSON in a thread


async def list_jobs(agent: Agent, req: web.Request) -> object:
    opts = parse_query_options(req)
    reply = await call(agent, JOB_LIST, JobListRequest(prefix=opts.prefix, **envelope(req, opts)))
    return query_result(reply.meta, [to_api(j) for j in reply.jobs])


async def job_from_body(agent: Agent, req: web.Request) -> tuple[Job, dict[str, Any]]:
    """The ``Job`` of a ``{"Job": {...}, ...}`` body (register, plan) and the whole body."""
    limits = agent.config.server.limits
    body = await read_body(req, max_bytes=limits.job_max_size, what="job", limit_name="job_max_size")
    raw = body.get("Job")
    if not isinstance(raw, dict):
        raise ValidationError("Job: missing job")
    path_id = req.match_info.get("id")
    if path_id is not None and raw.get("ID") not in (None, path_id):
        raise ValidationError("Job ID does not match name")
    if path_id is not None and raw.get("ID") is None:
        raw = {**raw, "ID": path_id}
    if not raw.get("Namespace"):
        raw = {**raw, "Namespace": req.query.get("namespace", "default") or "default"}
    check_api_sizes(raw, limits)
    check_supported(Job, raw, "Job")
    if (req.content_length or 0) > LARGE_JOB_BYTES:  # a big conversion runs off the loop
        job = await asyncio.to_thread(from_api, Job, raw, path="Job")
    else:
        job = from_api(Job, raw, path="Job")
    return job, body


async def register_job(agent: Agent, req: web.Request) -> object:
    job, body = await job_from_body(agent, req)
    env = envelope(req)
    env["namespace"] = job.namespace
    enforce = body.get("EnforceIndex", False)
    modify_index = body.get("JobModifyIndex", 0) or 0
    if not isinstance(enforce, bool) or not isinstance(modify_index, int) or modify_index < 0:
        raise ValidationError("EnforceIndex must be a boolean and JobModifyIndex a non-negative integer")
    request = JobRegisterRequest(job=job, enforce_index=enforce, job_modify_index=modify_index, **env)
    return register_result(await call(agent, JOB_REGISTER, request))


def register_result(reply: JobRegisterReply) -> object:
    """Nomad's JobRegisterResponse (register, and revert, scale and evaluate)."""
    return write_result(
        reply.meta,
        {
            "EvalID": reply.eval_id,
            "EvalCreateIndex": reply.eval_create_index,
            "JobModifyIndex": reply.job_modify_index,
            "Warnings": reply.warnings,
            "Index": reply.meta.index,
        },
    )


async def get_job(agent: Agent, req: web.Request) -> object:
    reply = await call(agent, JOB_GET, JobSpecificRequest(job_id=req.match_info["id"], **envelope(req)))
    if reply.job is None:
        raise UnknownJobError("job not found")
    return query_result(reply.meta, to_api(reply.job))


async def deregister_job(agent: Agent, req: web.Request) -> object:
    request = JobDeregisterRequest(
        job_id=req.match_info["id"], purge=query_flag(req.query, "purge"), **envelope(req)
    )
    reply = await call(agent, JOB_DEREGISTER, request)
    return write_result(
        reply.meta,
        {
            "EvalID": reply.eval_id,
            "EvalCreateIndex": reply.eval_create_index,
            "JobModifyIndex": reply.job_modify_index,
            "Index": reply.meta.index,
        },
    )


def _job_request(req: web.Request) -> JobSpecificRequest:
    return JobSpecificRequest(job_id=req.match_info["id"], **envelope(req))


async def job_allocations(agent: Agent, req: web.Request) -> object:
    request = JobSpecificRequest(
        job_id=req.match_info["id"], all=query_flag(req.query, "all"), **envelope(req)
    )
    reply = await call(agent, JOB_ALLOCATIONS, request)
    return query_result(reply.meta, [to_api(a) for a in reply.allocations])


async def job_evaluations(agent: Agent, req: web.Request) -> object:
    reply = await call(agent, JOB_EVALUATIONS, _job_request(req))
    return query_result(reply.meta, [to_api(e) for e in reply.evaluations])


async def job_summary(agent: Agent, req: web.Request) -> object:
    reply = await call(agent, JOB_SUMMARY, _job_request(req))
    if reply.summary is None:
        raise UnknownJobError("job not found")
    return query_result(reply.meta, to_api(reply.summary))


async def job_versions(agent: Agent, req: web.Request) -> object:
    """``?diffs=true`` adds each version's diff against the one before it (Nomad's JobDiff)."""
    if query_flag(req.query, "diffs"):
        diffs = await call(agent, JOB_VERSION_DIFFS, _job_request(req))
        if not diffs.versions:
            raise UnknownJobError("job not found")
        versions = [to_api(j) for j in diffs.versions]
        return query_result(diffs.meta, {"Versions": versions, "Diffs": diffs.diffs})
    reply = await call(agent, JOB_VERSIONS, _job_request(req))
    if not reply.versions:
        raise UnknownJobError("job not found")
    value: dict[str, Any] = {"Versions": [to_api(j) for j in reply.versions], "Diffs": None}
    return query_result(reply.meta, value)


def register(router: Router) -> None:
    router.add("GET", "/v1/jobs", list_jobs)
    router.add("PUT", "/v1/jobs", register_job)
    router.add("POST", "/v1/jobs", register_job)
    router.add("GET", "/v1/job/{id}", get_job)
    router.add("PUT", "/v1/job/{id}", register_job)
    router.add("POST", "/v1/job/{id}", register_job)
    router.add("DELETE", "/v1/job/{id}", deregister_job)
    router.add("GET", "/v1/job/{id}/allocations", job_allocations)
    router.add("GET", "/v1/job/{id}/evaluations", job_evaluations)
    router.add("GET", "/v1/job/{id}/summary", job_summary)
    router.add("GET", "/v1/job/{id}/versions", job_versions)
