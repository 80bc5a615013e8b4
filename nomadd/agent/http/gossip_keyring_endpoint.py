"""Nomad's gossip keyring API (``/v1/agent/keyring/list|install|use|remove``), on server agents.

``install``/``use``/``remove`` take ``{"Key": "<base64>"}`` and act on every alive server of the
region (``nomadd.server.gossip_keyring``); ``list`` answers Nomad's ``KeyringResponse``
(``{Messages, Keys: {key: servers holding it}, NumNodes}``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nomadd.agent.http.server import read_body
from nomadd.server.gossip_keyring import decode_key
from nomadd.structs.errors import NotImplementedForModeError, ValidationError
from nomadd.structs.requests.keyring import GossipKeyringOp

if TYPE_CHECKING:
    from aiohttp import web

    from nomadd.agent.agent import Agent
    from nomadd.agent.http.server import Router


async def _operate(agent: Agent, op: GossipKeyringOp, key: bytes = b"") -> dict[str, object]:
    if agent.server is None:
        raise NotImplementedForModeError("keyring operations must run against a server agent")
    return await agent.server.gossip_keyring.operate(op, key)


async def keyring_list(agent: Agent, req: web.Request) -> object:
    return await _operate(agent, GossipKeyringOp.LIST)


async def _change(agent: Agent, req: web.Request, op: GossipKeyringOp) -> object:
    key = (await read_body(req)).get("Key")
    if not isinstance(key, str) or not key:
        raise ValidationError('request body must be {"Key": "<base64 key>"}')
    await _operate(agent, op, decode_key(key))
    return None


async def keyring_install(agent: Agent, req: web.Request) -> object:
    return await _change(agent, req, GossipKeyringOp.INSTALL)


async def keyring_use(agent: Agent, req: web.Request) -> object:
    return await _change(agent, req, GossipKeyringOp.USE)


async def keyring_remove(agent: Agent, req: web.Request) -> object:
    return await _change(agent, req, GossipKeyringOp.REMOVE)


def register(router: Router) -> None:
    router.add("GET", "/v1/agent/keyring/list", keyring_list)
    for method in ("PUT", "POST"):
        router.add(method, "/v1/agent/keyring/install", keyring_install)
        router.add(method, "/v1/agent/keyring/use", keyring_use)
        router.add(method, "/v1/agent/keyring/remove", keyring_remove)
