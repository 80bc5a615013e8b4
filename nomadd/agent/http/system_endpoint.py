"""``PUT /v1/system/gc``: force garbage collection now (Nomad's system_endpoint.go)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from nomadd.agent.http.internal_endpoint import call_rpc

if TYPE_CHECKING:
    from nomadd.agent.agent import Agent
    from nomadd.agent.http.server import Router


async def garbage_collect(agent: Agent, req: web.Request) -> object:
    await call_rpc(agent, "System.GarbageCollect", {})
    return None


def register(router: Router) -> None:
    router.add("PUT", "/v1/system/gc", garbage_collect)
