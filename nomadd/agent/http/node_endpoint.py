"""Nodes: ``GET /v1/nodes`` (``?prefix ?os ?resources``, blocking), ``GET /v1/node/:id``,
``POST|PUT /v1/node/:id/eligibility``, ``POST|PUT /v1/node/:id/purge``,
``POST|PUT /v1/node/:id/drain``, ``GET /v1/node/:id/allocations`` (Nomad's node_endpoint.go)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from nomadd.agent.http.internal_endpoint import call_rpc, legacy_query_result, query_args
from nomadd.agent.http.server import QueryResult, parse_query_options
from nomadd.structs.errors import UnknownNodeError, ValidationError

if TYPE_CHECKING:
    from nomadd.agent.agent import Agent
    from nomadd.agent.http.server import Router


def _flag(req: web.Request, name: str) -> bool:
    return req.query.get(name, "").lower() in ("1", "true", "yes")


async def list_nodes(agent: Agent, req: web.Request) -> object:
    opts = parse_query_options(req)
    args = query_args(opts, Prefix=opts.prefix, OS=_flag(req, "os"), Resources=_flag(req, "resources"))
    return legacy_query_result(await call_rpc(agent, "Node.List", args))


async def get_node(agent: Agent, req: web.Request) -> object:
    opts = parse_query_options(req)
    node_id = req.match_info["id"]
    reply = await call_rpc(agent, "Node.GetNode", query_args(opts, NodeID=node_id))
    if reply.get("Value") is None:
        raise UnknownNodeError("node not found")
    return legacy_query_result(reply)


async def _body(req: web.Request) -> dict[str, Any]:
    if not req.can_read_body:
        return {}
    try:
        body = await req.json()
    except ValueError as err:
        raise ValidationError(f"Failed to parse request: {err}") from None
    if not isinstance(body, dict):
        raise ValidationError("request body must be a JSON object")
    return body


async def eligibility(agent: Agent, req: web.Request) -> object:
    body = await _body(req)
    elig = body.get("Eligibility")
    if not isinstance(elig, str) or not elig:
        raise ValidationError("missing eligibility")
    args = {"NodeID": req.match_info["id"], "Eligibility": elig}
    reply: dict[str, Any] = await call_rpc(agent, "Node.UpdateEligibility", args)
    return QueryResult(value={k: v for k, v in reply.items() if k != "Index"}, index=int(reply["Index"]))


async def drain(agent: Agent, req: web.Request) -> object:
    """Nomad's body ``{DrainSpec: {Deadline, IgnoreSystemJobs} | null, MarkEligible, Meta}`` →
    ``Node.UpdateDrain`` (``server/drainer.py``; a null spec cancels the drain)."""
    body = await _body(req)
    spec = body.get("DrainSpec")
    if spec is not None and not isinstance(spec, dict):
        raise ValidationError("DrainSpec must be an object or null")
    args = {
        "NodeID": req.match_info["id"],
        "DrainStrategy": spec,
        "MarkEligible": bool(body.get("MarkEligible")),
        "Meta": body.get("Meta") or {},
    }
    reply: dict[str, Any] = await call_rpc(agent, "Node.UpdateDrain", args)
    return QueryResult(
        value={k: v for k, v in reply.items() if k != "Index"}, index=int(reply.get("Index", 1))
    )


async def purge(agent: Agent, req: web.Request) -> object:
    reply = await call_rpc(agent, "Node.Deregister", {"NodeIDs": [req.match_info["id"]]})
    index = int(reply["Index"])
    return QueryResult(value={"EvalIDs": [], "EvalCreateIndex": 0, "NodeModifyIndex": index}, index=index)


async def node_allocations(agent: Agent, req: web.Request) -> object:
    opts = parse_query_options(req)
    node_id = req.match_info["id"]
    reply = await call_rpc(agent, "Alloc.List", query_args(opts, NodeID=node_id, Namespace="*"))
    result = legacy_query_result(reply)
    rows = result.value if isinstance(result.value, list) else []
    allocs = [a for a in rows if isinstance(a, dict) and a.get("NodeID") == node_id]
    return QueryResult(
        value=allocs,
        index=result.index,
        known_leader=result.known_leader,
        last_contact_ms=result.last_contact_ms,
    )


def register(router: Router) -> None:
    router.add("GET", "/v1/nodes", list_nodes)
    router.add("GET", "/v1/node/{id}", get_node)
    router.add("GET", "/v1/node/{id}/allocations", node_allocations)
    for method in ("PUT", "POST"):
        router.add(method, "/v1/node/{id}/eligibility", eligibility)
        router.add(method, "/v1/node/{id}/purge", purge)
        router.add(method, "/v1/node/{id}/drain", drain)
