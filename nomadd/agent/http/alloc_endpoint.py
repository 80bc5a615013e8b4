"""Allocations: ``/v1/allocations`` (``?prefix=``), ``/v1/allocation/:id`` and
``/v1/allocation/:id/stop`` (Nomad's alloc_endpoint.go)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from nomadd.agent.http.internal_endpoint import call, envelope, query_result, write_result
from nomadd.agent.http.params import query_flag
from nomadd.agent.http.server import parse_query_options
from nomadd.structs.codec import to_api
from nomadd.structs.errors import UnknownAllocError
from nomadd.structs.requests.alloc import (
    ALLOC_GET,
    ALLOC_LIST,
    ALLOC_STOP,
    AllocListRequest,
    AllocSpecificRequest,
)

if TYPE_CHECKING:
    from nomadd.agent.agent import Agent
    from nomadd.agent.http.server import Router


async def list_allocs(agent: Agent, req: web.Request) -> object:
    opts = parse_query_options(req)
    resources = query_flag(req.query, "resources")
    request = AllocListRequest(prefix=opts.prefix, resources=resources, **envelope(req, opts))
    reply = await call(agent, ALLOC_LIST, request)
    return query_result(reply.meta, [to_api(a) for a in reply.allocations])


async def get_alloc(agent: Agent, req: web.Request) -> object:
    request = AllocSpecificRequest(alloc_id=req.match_info["id"], **envelope(req))
    reply = await call(agent, ALLOC_GET, request)
    if reply.alloc is None:
        raise UnknownAllocError("alloc not found")
    doc = to_api(reply.alloc)
    doc["Resources"] = to_api(reply.alloc.allocated_resources.legacy())  # Nomad still sends it
    return query_result(reply.meta, doc)


async def stop_alloc(agent: Agent, req: web.Request) -> object:
    reply = await call(
        agent, ALLOC_STOP, AllocSpecificRequest(alloc_id=req.match_info["id"], **envelope(req))
    )
    return write_result(reply.meta, {"EvalID": reply.eval_id, "Index": reply.meta.index})


def register(router: Router) -> None:
    router.add("GET", "/v1/allocations", list_allocs)
    router.add("GET", "/v1/allocation/{id}", get_alloc)
    router.add("PUT", "/v1/allocation/{id}/stop", stop_alloc)
    router.add("POST", "/v1/allocation/{id}/stop", stop_alloc)
