"""Allocations: ``/v1/allocations`` (``?prefix=``), ``/v1/allocation/:id`` and
``/v1/allocation/:id/stop`` (Nomad's alloc_endpoint.go)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from nomadd.agent.http.internal_endpoint import call_rpc, legacy_query_result, query_args
from nomadd.agent.http.server import QueryResult, parse_query_options
from nomadd.structs.errors import UnknownAllocError

if TYPE_CHECKING:
    from nomadd.agent.agent import Agent
    from nomadd.agent.http.server import Router


async def list_allocs(agent: Agent, req: web.Request) -> object:
    opts = parse_query_options(req)
    return legacy_query_result(await call_rpc(agent, "Alloc.List", query_args(opts, Prefix=opts.prefix)))


async def get_alloc(agent: Agent, req: web.Request) -> object:
    opts = parse_query_options(req)
    reply = await call_rpc(agent, "Alloc.GetAlloc", query_args(opts, AllocID=req.match_info["id"]))
    if reply.get("Value") is None:
        raise UnknownAllocError("alloc not found")
    return legacy_query_result(reply)


async def stop_alloc(agent: Agent, req: web.Request) -> object:
    reply = await call_rpc(agent, "Alloc.Stop", {"AllocID": req.match_info["id"]})
    return QueryResult(value=reply, index=int(reply.get("Index", 0)))


def register(router: Router) -> None:
    router.add("GET", "/v1/allocations", list_allocs)
    router.add("GET", "/v1/allocation/{id}", get_alloc)
    router.add("PUT", "/v1/allocation/{id}/stop", stop_alloc)
    router.add("POST", "/v1/allocation/{id}/stop", stop_alloc)
