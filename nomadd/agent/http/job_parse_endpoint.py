"""``PUT|POST /v1/jobs/parse`` and ``PUT|POST /v1/validate/job`` (Nomad's command/agent/job_endpoint.go
``JobsParseRequest`` and ``ValidateJobRequest``).

Parse: ``{"JobHCL", "Canonicalize", "Variables", "HCLv1"}`` → the job as API JSON (HCLv1 is
refused: Nomad removed it). The HCL is read by :mod:`nomadd.helper.jobspec`, the same code as the
CLI's ``job run``, in a thread (a big file must not stall the loop). Needs ``parse-job`` or
``submit-job`` in the namespace. Validate: ``{"Job": {...}}`` →
``{"DriverConfigValidated", "ValidationErrors", "Error", "Warnings"}``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from aiohttp import web

from nomadd.agent.http.acl_rules import token_of
from nomadd.agent.http.internal_endpoint import call, envelope, query_result
from nomadd.agent.http.server import read_body
from nomadd.helper.jobspec import JobFileError, parse_hcl
from nomadd.server.acl.resolver import ERR_PERMISSION_DENIED
from nomadd.structs.codec import from_api, to_api
from nomadd.structs.errors import PermissionDeniedError, ValidationError
from nomadd.structs.job import Job
from nomadd.structs.job_sizes import check_api_sizes
from nomadd.structs.nomad_api import check_supported
from nomadd.structs.requests.jobspec import JOB_VALIDATE, JobValidateRequest

if TYPE_CHECKING:
    from nomadd.agent.agent import Agent
    from nomadd.agent.http.server import Router

__all__ = ["register"]


async def parse_job(agent: Agent, req: web.Request) -> object:
    namespace = req.query.get("namespace", "") or "default"
    acl = await agent.acl.resolve(token_of(req)) if agent.acl.enabled else None
    if acl is not None and not (
        acl.allow_ns_op(namespace, "parse-job") or acl.allow_ns_op(namespace, "submit-job")
    ):
        raise PermissionDeniedError(ERR_PERMISSION_DENIED)
    limits = agent.config.server.limits
    body = await read_body(req, max_bytes=limits.job_max_size, what="job", limit_name="job_max_size")
    hcl, variables = body.get("JobHCL"), body.get("Variables")
    if not isinstance(hcl, str) or not hcl:
        raise ValidationError("Job spec is empty")
    if variables is not None and not isinstance(variables, str):
        raise ValidationError("Variables: expected a string (an HCL variables file)")
    if body.get("HCLv1"):
        raise ValidationError("HCLv1: HCL version 1 job specifications are not supported")
    try:
        raw = await asyncio.to_thread(parse_hcl, hcl, variables or "")
    except JobFileError as err:
        raise ValidationError(f"Failed to parse job: {err}") from None
    check_api_sizes(raw, limits)
    job = from_api(Job, raw, path="Job")
    if body.get("Canonicalize"):
        job = job.canonicalize()
    return to_api(job)


async def validate_job(agent: Agent, req: web.Request) -> object:
    limits = agent.config.server.limits
    body = await read_body(req, max_bytes=limits.job_max_size, what="job", limit_name="job_max_size")
    raw: Any = body.get("Job")
    if not isinstance(raw, dict):
        raise ValidationError("Job must be specified")
    env = envelope(req)
    if not raw.get("Namespace"):
        raw = {**raw, "Namespace": env["namespace"]}
    env["namespace"] = raw["Namespace"]
    check_api_sizes(raw, limits)
    check_supported(Job, raw, "Job")  # a Nomad field nomadd does not implement: 400, as register
    job = from_api(Job, raw, path="Job")
    reply = await call(agent, JOB_VALIDATE, JobValidateRequest(job=job, **env))
    return query_result(
        reply.meta,
        {
            "DriverConfigValidated": reply.driver_config_validated,
            "ValidationErrors": list(reply.validation_errors) or None,
            "Error": reply.error,
            "Warnings": reply.warnings,
        },
    )


def register(router: Router) -> None:
    for method in ("PUT", "POST"):
        router.add(method, "/v1/jobs/parse", parse_job)
        router.add(method, "/v1/validate/job", validate_job)
