"""``/v1/status/leader`` and ``/v1/status/peers`` (raft addresses, as Nomad's RPC addresses)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nomadd.agent.http.internal_endpoint import call_rpc

if TYPE_CHECKING:
    from aiohttp import web

    from nomadd.agent.agent import Agent
    from nomadd.agent.http.server import Router


async def status_leader(agent: Agent, req: web.Request) -> object:
    return await call_rpc(agent, "Status.Leader", {})


async def status_peers(agent: Agent, req: web.Request) -> object:
    return await call_rpc(agent, "Status.Peers", {})


def register(router: Router) -> None:
    router.add("GET", "/v1/status/leader", status_leader)
    router.add("GET", "/v1/status/peers", status_peers)
