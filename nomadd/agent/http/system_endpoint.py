"""``PUT /v1/system/gc``: force garbage collection now (Nomad's system_endpoint.go)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from nomadd.agent.http.internal_endpoint import call, envelope
from nomadd.structs.requests import Envelope
from nomadd.structs.requests.system import SYSTEM_GARBAGE_COLLECT

if TYPE_CHECKING:
    from nomadd.agent.agent import Agent
    from nomadd.agent.http.server import Router


async def garbage_collect(agent: Agent, req: web.Request) -> object:
    await call(agent, SYSTEM_GARBAGE_COLLECT, Envelope(**envelope(req)))
    return None


def register(router: Router) -> None:
    router.add("PUT", "/v1/system/gc", garbage_collect)
