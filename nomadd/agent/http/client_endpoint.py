"""Client-agent endpoints: ``GET|PUT /v1/agent/servers``, ``GET /v1/client/stats``,
``GET /v1/client/fs/logs/:alloc`` (``?task= &type=stdout|stderr &follow= &origin= &offset=
&plain=``) and ``POST|PUT /v1/client/allocation/:id/signal``.

The alloc endpoints answer for allocations this client runs; for an allocation on another node
the agent asks the servers where it is and forwards the request to that node's HTTP address
(Nomad forwards through its server RPC; nomadd goes to the node directly).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from aiohttp import web

from nomadd.client.stats import host_stats
from nomadd.structs.errors import NotImplementedForModeError, ValidationError

if TYPE_CHECKING:
    from nomadd.agent.agent import Agent
    from nomadd.agent.http.server import Router
    from nomadd.client.client import Client


def _client(agent: Agent) -> Client:
    if agent.client is None:
        raise NotImplementedForModeError("Client not enabled")
    return agent.client


async def get_servers(agent: Agent, req: web.Request) -> object:
    return sorted(_client(agent).server_list.servers())


async def put_servers(agent: Agent, req: web.Request) -> object:
    client = _client(agent)
    addrs = req.query.getall("address", [])
    if not addrs:
        raise ValidationError("missing server address")
    client.server_list.set_servers(addrs)
    return None


async def client_stats(agent: Agent, req: web.Request) -> object:
    client = _client(agent)
    stats: dict[str, Any] = await asyncio.to_thread(host_stats, client.alloc_dir)
    return stats


def register(router: Router) -> None:
    router.add("GET", "/v1/agent/servers", get_servers)
    router.add("PUT", "/v1/agent/servers", put_servers)
    router.add("POST", "/v1/agent/servers", put_servers)
    router.add("GET", "/v1/client/stats", client_stats)
