"""``/v1/regions``: the regions this server knows of (its own, plus any seen in gossip)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nomadd.agent.http.internal_endpoint import call, envelope
from nomadd.structs.requests import Envelope
from nomadd.structs.requests.status import STATUS_REGIONS

if TYPE_CHECKING:
    from aiohttp import web

    from nomadd.agent.agent import Agent
    from nomadd.agent.http.server import Router


async def regions(agent: Agent, req: web.Request) -> object:
    reply = await call(agent, STATUS_REGIONS, Envelope(**envelope(req)))
    return list(reply.regions)


def register(router: Router) -> None:
    router.add("GET", "/v1/regions", regions)
