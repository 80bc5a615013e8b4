"""Evaluations: ``/v1/evaluations`` (``?prefix=``), ``/v1/evaluation/:id`` and
``/v1/evaluation/:id/allocations`` (Nomad's eval_endpoint.go)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from nomadd.agent.http.internal_endpoint import call, envelope, query_result
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


async def get_eval(agent: Agent, req: web.Request) -> object:
    reply = await call(agent, EVAL_GET, EvalSpecificRequest(eval_id=req.match_info["id"], **envelope(req)))
    if reply.eval is None:
        raise UnknownEvalError("eval not found")
    return query_result(reply.meta, to_api(reply.eval))


async def eval_allocs(agent: Agent, req: web.Request) -> object:
    request = EvalSpecificRequest(eval_id=req.match_info["id"], **envelope(req))
    reply = await call(agent, EVAL_ALLOCATIONS, request)
    return query_result(reply.meta, [to_api(a) for a in reply.allocations])


def register(router: Router) -> None:
    router.add("GET", "/v1/evaluations", list_evals)
    router.add("GET", "/v1/evaluation/{id}", get_eval)
    router.add("GET", "/v1/evaluation/{id}/allocations", eval_allocs)
