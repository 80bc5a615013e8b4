"""``/v1/regions``: the regions this server knows of (its own, plus any seen in gossip)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nomadd.agent.http.internal_endpoint import call_rpc

if TYPE_CHECKING:
    from aiohttp import web

    from nomadd.agent.agent import Agent
    from nomadd.agent.http.server import Router


async def regions(agent: Agent, req: web.Request) -> object:
    return await call_rpc(agent, "Status.Regions", {})


def register(router: Router) -> None:
    router.add("GET", "/v1/regions", regions)
