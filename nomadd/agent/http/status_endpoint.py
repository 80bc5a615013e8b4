"""``/v1/status/leader`` and ``/v1/status/peers`` (raft addresses, as Nomad's RPC addresses)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nomadd.agent.http.internal_endpoint import call, envelope
from nomadd.structs.requests import Envelope
from nomadd.structs.requests.status import STATUS_LEADER, STATUS_PEERS

if TYPE_CHECKING:
    from aiohttp import web

    from nomadd.agent.agent import Agent
    from nomadd.agent.http.server import Router


async def status_leader(agent: Agent, req: web.Request) -> object:
    reply = await call(agent, STATUS_LEADER, Envelope(**envelope(req)))
    return reply.leader


async def status_peers(agent: Agent, req: web.Request) -> object:
    reply = await call(agent, STATUS_PEERS, Envelope(**envelope(req)))
    return list(reply.peers)


def register(router: Router) -> None:
    router.add("GET", "/v1/status/leader", status_leader)
    router.add("GET", "/v1/status/peers", status_peers)
