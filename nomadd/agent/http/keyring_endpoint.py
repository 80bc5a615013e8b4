"""Nomad's root keyring API: ``GET /v1/operator/keyring/keys``, ``PUT /v1/operator/keyring/rotate``.

Keys are shown without their material (``KeyID``, ``Algorithm``, ``CreateTime``, ``State``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nomadd.agent.http.internal_endpoint import call, envelope, query_result, write_result
from nomadd.structs.requests.keyring import (
    KEYRING_LIST,
    KEYRING_ROTATE,
    KeyringListRequest,
    KeyringRotateRequest,
    RootKeyMeta,
)

if TYPE_CHECKING:
    from aiohttp import web

    from nomadd.agent.agent import Agent
    from nomadd.agent.http.server import Router


def _key_api(k: RootKeyMeta) -> dict[str, object]:
    return {"KeyID": k.key_id, "Algorithm": k.algorithm, "CreateTime": k.create_time, "State": str(k.state)}


async def keyring_keys(agent: Agent, req: web.Request) -> object:
    reply = await call(agent, KEYRING_LIST, KeyringListRequest(**envelope(req)))
    return query_result(reply.meta, [_key_api(k) for k in reply.keys])


async def keyring_rotate(agent: Agent, req: web.Request) -> object:
    reply = await call(agent, KEYRING_ROTATE, KeyringRotateRequest(**envelope(req)))
    return write_result(reply.meta, {"Key": _key_api(reply.key), "Index": reply.meta.index})


def register(router: Router) -> None:
    router.add("GET", "/v1/operator/keyring/keys", keyring_keys)
    router.add("PUT", "/v1/operator/keyring/rotate", keyring_rotate)
    router.add("POST", "/v1/operator/keyring/rotate", keyring_rotate)
