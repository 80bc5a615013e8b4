"""Nodes: ``GET /v1/nodes`` (``?prefix ?os ?resources``, blocking), ``GET /v1/node/:id``,
``POST|PUT /v1/node/:id/eligibility``, ``POST|PUT /v1/node/:id/purge``,
``GET /v1/node/:id/allocations`` (Nomad's node_endpoint.go); ``/v1/node/:id/drain`` is in
``node_alloc_endpoint``. API JSON becomes the typed ``Node.*`` requests here, and their replies
Nomad's JSON again."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from nomadd.agent.http.internal_endpoint import call, envelope, query_result, write_result
from nomadd.agent.http.params import query_flag
from nomadd.agent.http.server import QueryResult, parse_query_options, read_body
from nomadd.structs.codec import to_api
from nomadd.structs.errors import UnknownNodeError, ValidationError
from nomadd.structs.node import NodeEligibility, NodeListStub
from nomadd.structs.requests.alloc import ALLOC_LIST, AllocListRequest
from nomadd.structs.requests.node import (
    NODE_DEREGISTER,
    NODE_GET,
    NODE_LIST,
    NODE_UPDATE_ELIGIBILITY,
    NodeDeregisterRequest,
    NodeListRequest,
    NodeSpecificRequest,
    NodeUpdateEligibilityRequest,
    NodeWriteReply,
)

if TYPE_CHECKING:
    from nomadd.agent.agent import Agent
    from nomadd.agent.http.server import Router

__all__ = ["node_write_result", "optional_body", "register"]

# Row keys Nomad leaves out of ``GET /v1/nodes`` unless ``?os`` / ``?resources`` asks for them.
_OPTIONAL_STUB_KEYS = ("Attributes", "NodeResources", "ReservedResources")


def _stub_api(stub: NodeListStub) -> dict[str, Any]:
    row = to_api(stub)
    for key in _OPTIONAL_STUB_KEYS:
        if row.get(key) is None:
            row.pop(key, None)
    return row


async def list_nodes(agent: Agent, req: web.Request) -> object:
    opts = parse_query_options(req)
    request = NodeListRequest(
        prefix=opts.prefix,
        os=query_flag(req.query, "os"),
        resources=query_flag(req.query, "resources"),
        **envelope(req, opts),
    )
    reply = await call(agent, NODE_LIST, request)
    return query_result(reply.meta, [_stub_api(n) for n in reply.nodes])


async def get_node(agent: Agent, req: web.Request) -> object:
    reply = await call(agent, NODE_GET, NodeSpecificRequest(node_id=req.match_info["id"], **envelope(req)))
    if reply.node is None:
        raise UnknownNodeError("node not found")
    return query_result(reply.meta, to_api(reply.node))


async def optional_body(req: web.Request) -> dict[str, Any]:
    """The JSON object body, or ``{}`` when there is none."""
    return await read_body(req, optional=True)


def node_write_result(reply: NodeWriteReply) -> QueryResult:
    """Nomad's ``NodeUpdateResponse`` JSON (eligibility, drain) with ``X-Nomad-Index``."""
    value = {
        "NodeModifyIndex": reply.node_modify_index,
        "EvalIDs": list(reply.eval_ids),
        "EvalCreateIndex": reply.eval_create_index,
    }
    return write_result(reply.meta, value)


async def eligibility(agent: Agent, req: web.Request) -> object:
    body = await optional_body(req)
    elig = body.get("Eligibility")
    if not isinstance(elig, str) or not elig:
        raise ValidationError("missing eligibility")
    if elig not in tuple(NodeEligibility):
        raise ValidationError(f"invalid scheduling eligibility {elig!r}")
    request = NodeUpdateEligibilityRequest(
        node_id=req.match_info["id"], eligibility=NodeEligibility(elig), **envelope(req)
    )
    return node_write_result(await call(agent, NODE_UPDATE_ELIGIBILITY, request))


async def purge(agent: Agent, req: web.Request) -> object:
    request = NodeDeregisterRequest(node_ids=(req.match_info["id"],), **envelope(req))
    reply = await call(agent, NODE_DEREGISTER, request)
    index = reply.meta.index
    return write_result(reply.meta, {"EvalIDs": [], "EvalCreateIndex": 0, "NodeModifyIndex": index})


async def node_allocations(agent: Agent, req: web.Request) -> object:
    env = envelope(req)
    env["namespace"] = "*"  # every namespace's allocations on the node, as Nomad lists them
    reply = await call(agent, ALLOC_LIST, AllocListRequest(node_id=req.match_info["id"], full=True, **env))
    return query_result(reply.meta, [to_api(a) for a in reply.full])


def register(router: Router) -> None:
    router.add("GET", "/v1/nodes", list_nodes)
    router.add("GET", "/v1/node/{id}", get_node)
    router.add("GET", "/v1/node/{id}/allocations", node_allocations)
    for method in ("PUT", "POST"):
        router.add(method, "/v1/node/{id}/eligibility", eligibility)
        router.add(method, "/v1/node/{id}/purge", purge)
