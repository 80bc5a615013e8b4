"""``/v1/operator/raft/configuration`` and ``DELETE /v1/operator/raft/peer?id=|address=``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nomadd.agent.http.internal_endpoint import call, envelope, query_result
from nomadd.structs.codec import to_api
from nomadd.structs.errors import ValidationError
from nomadd.structs.requests import Envelope
from nomadd.structs.requests.operator import (
    OPERATOR_RAFT_CONFIGURATION,
    OPERATOR_REMOVE_PEER_BY_ADDRESS,
    OPERATOR_REMOVE_PEER_BY_ID,
    RaftPeerByAddressRequest,
    RaftPeerByIDRequest,
)

if TYPE_CHECKING:
    from aiohttp import web

    from nomadd.agent.agent import Agent
    from nomadd.agent.http.server import Router


async def raft_configuration(agent: Agent, req: web.Request) -> object:
    reply = await call(agent, OPERATOR_RAFT_CONFIGURATION, Envelope(**envelope(req)))
    value = {"Index": reply.meta.index, "Servers": [to_api(s) for s in reply.servers]}
    return query_result(reply.meta, value)


async def raft_peer_delete(agent: Agent, req: web.Request) -> object:
    peer_id = req.query.get("id", "")
    address = req.query.get("address", "")
    if bool(peer_id) == bool(address):
        raise ValidationError("Must specify either ?id with the server's ID or ?address with IP:port")
    if peer_id:
        await call(agent, OPERATOR_REMOVE_PEER_BY_ID, RaftPeerByIDRequest(id=peer_id, **envelope(req)))
    else:
        request = RaftPeerByAddressRequest(address=address, **envelope(req))
        await call(agent, OPERATOR_REMOVE_PEER_BY_ADDRESS, request)
    return None


def register(router: Router) -> None:
    router.add("GET", "/v1/operator/raft/configuration", raft_configuration)
    router.add("DELETE", "/v1/operator/raft/peer", raft_peer_delete)
