"""``POST /v1/internal/<Endpoint.Method>``: the internal RPC (msgpack in, msgpack out).

Also the helpers the other server-backed HTTP endpoints use: :func:`call_rpc` runs a method on
this agent's server (which forwards to the leader when needed) or, on a client-only agent,
through the client's ``rpc`` if it has one; :func:`query_args` and :func:`query_result` map
Nomad's query options and headers onto RPC arguments and replies.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from aiohttp import web

from nomadd.agent.http.server import QueryOptions, QueryResult
from nomadd.rpc.wire import FORWARDED_HEADER, MSGPACK_CONTENT_TYPE, decode, error_reply, ok_reply
from nomadd.structs.errors import NotImplementedForModeError, RPCError, ValidationError

if TYPE_CHECKING:
    from nomadd.agent.agent import Agent
    from nomadd.agent.http.server import Router

logger = logging.getLogger(__name__)

__all__ = ["call_rpc", "query_args", "query_result", "register"]


async def call_rpc(agent: Agent, method: str, args: dict[str, Any]) -> Any:
    if agent.server is not None:
        return await agent.server.rpc(method, args)
    client_rpc = getattr(agent.client, "rpc", None)
    if client_rpc is not None:
        return await client_rpc(method, args)
    raise NotImplementedForModeError("Server not enabled")


def query_args(opts: QueryOptions, **extra: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "AllowStale": opts.stale,
        "MinQueryIndex": opts.index,
        "MaxQueryTime": opts.wait_s,
        "Region": opts.region,
        "Namespace": opts.namespace,
    }
    args.update(extra)
    return args


def query_result(reply: dict[str, Any]) -> QueryResult:
    return QueryResult(
        value=reply.get("Value"),
        index=int(reply.get("Index", 1)),
        known_leader=bool(reply.get("KnownLeader", True)),
        last_contact_ms=int(reply.get("LastContact", 0)),
    )


async def internal(agent: Agent, req: web.Request) -> object:
    method = req.match_info["method"]
    try:
        try:
            args = decode(await req.read()) if req.can_read_body else {}
        except Exception as err:
            raise ValidationError(f"malformed rpc request: {err}") from err
        if not isinstance(args, dict):
            raise ValidationError("malformed rpc request: not a map")
        if agent.server is None:
            raise NotImplementedForModeError("Server not enabled")
        forwarded = req.headers.get(FORWARDED_HEADER) == "1"
        result = await agent.server.rpc(method, args, forwarded=forwarded)
        body = ok_reply(result)
        status = 200
    except RPCError as err:
        logger.debug("rpc failed method=%s code=%d err=%s", method, err.code, err.message)
        body = error_reply(err)
        status = err.code
    return web.Response(body=body, status=status, content_type=MSGPACK_CONTENT_TYPE)


def register(router: Router) -> None:
    router.add("POST", "/v1/internal/{method}", internal)
