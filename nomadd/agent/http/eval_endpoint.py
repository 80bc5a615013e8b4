"""Evaluations: ``/v1/evaluations`` (``?prefix=``), ``/v1/evaluation/:id`` and
``/v1/evaluation/:id/allocations`` (Nomad's eval_endpoint.go)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from nomadd.agent.http.internal_endpoint import call, envelope, query_result
from nomadd.agent.http.params import query_flag
from nomadd.agent.http.server import parse_query_options
from nomadd.structs.codec import to_api
from nomadd.structs.errors import UnknownEvalError
from nomadd.structs.requests.eval import (
    EVAL_ALLOCATIONS,
    EVAL_GET,
    EVAL_LIST,
    EvalListRequest,
    EvalSpecificRequest,
)

if TYPE_CHECKING:
    from nomadd.agent.agent import Agent
    from nomadd.agent.http.server import Router


async def list_evals(agent: Agent, req: web.Request) -> object:
    opts = parse_query_options(req)
    reply = await call(agent, EVAL_LIST, EvalListRequest(prefix=opts.prefix, **envelope(req, opts)))
    return query_result(reply.meta, [to_api(e) for e in reply.evaluations])


EVAL_STUB_KEYS = frozenset(
    [
        "ID",
        "Namespace",
        "Priority",
        "Type",
        "TriggeredBy",
        "JobID",
        "NodeID",
        "DeploymentID",
        "Status",
        "StatusDescription",
        "WaitUntil",
        "NextEval",
        "PreviousEval",
        "BlockedEval",
        "CreateIndex",
        "ModifyIndex",
        "CreateTime",
        "ModifyTime",
    ]
)


async def get_eval(agent: Agent, req: web.Request) -> object:
    related = query_flag(req.query, "related")
    request = EvalSpecificRequest(eval_id=req.match_info["id"], related=related, **envelope(req))
    reply = await call(agent, EVAL_GET, request)
    if reply.eval is None:
        raise UnknownEvalError("eval not found")
    out = to_api(reply.eval)
    if related:  # Nomad's EvaluationStub of each evaluation linked to this one
        out["RelatedEvals"] = [
            {k: v for k, v in to_api(e).items() if k in EVAL_STUB_KEYS} for e in reply.related
        ]
    return query_result(reply.meta, out)


async def eval_allocs(agent: Agent, req: web.Request) -> object:
    request = EvalSpecificRequest(eval_id=req.match_info["id"], **envelope(req))
    reply = await call(agent, EVAL_ALLOCATIONS, request)
    return query_result(reply.meta, [to_api(a) for a in reply.allocations])


def register(router: Router) -> None:
    router.add("GET", "/v1/evaluations", list_evals)
    router.add("GET", "/v1/evaluation/{id}", get_eval)
    router.add("GET", "/v1/evaluation/{id}/allocations", eval_allocs)
