"""``/v1/operator/raft/configuration`` and ``DELETE /v1/operator/raft/peer?id=|address=``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nomadd.agent.http.internal_endpoint import call_rpc
from nomadd.agent.http.server import QueryResult, parse_query_options
from nomadd.structs.errors import ValidationError

if TYPE_CHECKING:
    from aiohttp import web

    from nomadd.agent.agent import Agent
    from nomadd.agent.http.server import Router


async def raft_configuration(agent: Agent, req: web.Request) -> object:
    opts = parse_query_options(req)
    reply = await call_rpc(agent, "Operator.RaftGetConfiguration", {"AllowStale": opts.stale})
    known = bool(reply.pop("KnownLeader", True))
    contact = int(reply.pop("LastContact", 0))
    return QueryResult(reply, int(reply.get("Index", 1)), known, contact)


async def raft_peer_delete(agent: Agent, req: web.Request) -> object:
    peer_id = req.query.get("id", "")
    address = req.query.get("address", "")
    if bool(peer_id) == bool(address):
        raise ValidationError("Must specify either ?id with the server's ID or ?address with IP:port")
    if peer_id:
        await call_rpc(agent, "Operator.RaftRemovePeerByID", {"ID": peer_id})
    else:
        await call_rpc(agent, "Operator.RaftRemovePeerByAddress", {"Address": address})
    return None


def register(router: Router) -> None:
    router.add("GET", "/v1/operator/raft/configuration", raft_configuration)
    router.add("DELETE", "/v1/operator/raft/peer", raft_peer_delete)
