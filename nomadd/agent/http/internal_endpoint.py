"""``POST /v1/internal/<Endpoint.Method>``: the internal RPC (msgpack in, msgpack out).

Also the helpers the other server-backed HTTP endpoints use: :func:`call` runs a typed method
on this agent's server (which forwards to the leader when needed) or, on a client-only agent,
through the client's server list; :func:`envelope` reads Nomad's query options and token from
the HTTP request into the RPC envelope; :func:`query_result` turns a reply's
:class:`QueryMeta` into Nomad's headers.

Every internal call is authenticated before its body is used (``nomadd.rpc.auth``): a server's
signature or a node's SecretID; an anonymous call is refused (401), a bad credential 403.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from aiohttp import web

from nomadd.agent.http.acl_rules import token_of
from nomadd.agent.http.server import QueryOptions, QueryResult, parse_query_options
from nomadd.agent.http.tls import peer_is_server
from nomadd.rpc.wire import (
    MSGPACK_CONTENT_TYPE,
    decode_request,
    error_reply,
    ok_reply,
)
from nomadd.server.acl.rules import authorize_rpc
from nomadd.structs.errors import NotImplementedForModeError, RPCError
from nomadd.structs.requests import Envelope, Method, QueryMeta, Rep, Req, WriteMeta

if TYPE_CHECKING:
    from nomadd.agent.agent import Agent
    from nomadd.agent.http.server import Router

logger = logging.getLogger(__name__)

__all__ = [
    "call",
    "envelope",
    "query_result",
    "register",
    "token_of",
    "write_result",
]


def envelope(req: web.Request, opts: QueryOptions | None = None) -> dict[str, Any]:
    """The envelope fields of an HTTP request, as keyword arguments for a request struct."""
    if opts is None:
        opts = parse_query_options(req)
    return {
        "region": opts.region,
        "namespace": opts.namespace,
        "auth_token": token_of(req),
        "min_query_index": opts.index,
        "max_query_time_s": opts.wait_s,
        "allow_stale": opts.stale,
    }


async def call(agent: Agent, method: Method[Req, Rep], request: Req) -> Rep:
    """Run ``method`` on this agent's server, or through the client's servers."""
    if agent.server is not None:
        return await agent.server.rpc(method, request)
    if agent.client is not None:
        return await agent.client.call(method, request)
    raise NotImplementedForModeError("Server not enabled")


def query_result(meta: QueryMeta, value: object) -> QueryResult:
    return QueryResult(
        value=value, index=meta.index, known_leader=meta.known_leader, last_contact_ms=meta.last_contact_ms
    )


def write_result(meta: WriteMeta, value: object) -> QueryResult:
    return QueryResult(value=value, index=meta.index)


# ---- the endpoint ----------------------------------------------------------------------------


async def internal(agent: Agent, req: web.Request) -> object:
    name = req.match_info["method"]
    try:
        if agent.server is None:
            raise NotImplementedForModeError("Server not enabled")
        method = agent.server.method_of(name)
        body = await req.read() if req.can_read_body else b""
        # Who is calling, before anything in the body is used (nomadd.rpc.auth).
        peer_server = peer_is_server(req, agent.server.config.region)
        verified = await agent.server.rpc_auth.authenticate(name, req.headers, body, peer_server=peer_server)
        request: Envelope = agent.server.rpc_auth.admit(name, decode_request(method.request, body), verified)
        await authorize_rpc(agent.acl, name, request, agent.server.store.snapshot)
        out = ok_reply(await agent.server.rpc(method, request))
        status = 200
    except RPCError as err:
        logger.debug("rpc failed method=%s code=%d err=%s", name, err.code, err.message)
        out = error_reply(err)
        status = err.code
    return web.Response(body=out, status=status, content_type=MSGPACK_CONTENT_TYPE)


def register(router: Router) -> None:
    router.add("POST", "/v1/internal/{method}", internal)
