"""Evaluations: ``/v1/evaluations`` (``?prefix=``), ``/v1/evaluation/:id`` and
``/v1/evaluation/:id/allocations`` (Nomad's eval_endpoint.go)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from nomadd.agent.http.internal_endpoint import call_rpc, legacy_query_result, query_args
from nomadd.agent.http.server import parse_query_options
from nomadd.structs.errors import UnknownEvalError

if TYPE_CHECKING:
    from nomadd.agent.agent import Agent
    from nomadd.agent.http.server import Router


async def list_evals(agent: Agent, req: web.Request) -> object:
    opts = parse_query_options(req)
    return legacy_query_result(await call_rpc(agent, "Eval.List", query_args(opts, Prefix=opts.prefix)))


async def get_eval(agent: Agent, req: web.Request) -> object:
    opts = parse_query_options(req)
    reply = await call_rpc(agent, "Eval.GetEval", query_args(opts, EvalID=req.match_info["id"]))
    if reply.get("Value") is None:
        raise UnknownEvalError("eval not found")
    return legacy_query_result(reply)


async def eval_allocs(agent: Agent, req: web.Request) -> object:
    opts = parse_query_options(req)
    reply = await call_rpc(agent, "Eval.Allocations", query_args(opts, EvalID=req.match_info["id"]))
    return legacy_query_result(reply)


def register(router: Router) -> None:
    router.add("GET", "/v1/evaluations", list_evals)
    router.add("GET", "/v1/evaluation/{id}", get_eval)
    router.add("GET", "/v1/evaluation/{id}/allocations", eval_allocs)
