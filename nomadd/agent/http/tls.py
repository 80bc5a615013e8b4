"""Who is on the other end of an HTTP request, by its TLS client certificate.

The listener asks every caller for a certificate (``nomadd.rpc.tls``); the handshake already
refused one that the CA did not sign. Here:

* :func:`peer_names` — the DNS names of the caller's verified certificate (empty without TLS or
  without a certificate);
* :func:`peer_is_server` — the caller holds a server certificate of this region
  (``server.<region>.nomad``): the servers-only credential when TLS is on. An RPC that only
  servers may call checks it, e.g.
  ``if agent.tls is not None and not peer_is_server(request, agent.config.region): 403``;
* :func:`require_rpc_certificate` — the middleware that refuses ``/v1/internal/*`` to a caller
  without a certificate when ``tls.rpc`` is on (Nomad's RPC port always wants one).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from nomadd.helper.tlsnames import role_name
from nomadd.rpc.tls import AgentTLS, peer_dns_names

__all__ = ["INTERNAL_PREFIX", "peer_is_server", "peer_names", "require_rpc_certificate"]

INTERNAL_PREFIX = "/v1/internal/"


def peer_names(request: web.Request) -> frozenset[str]:
    transport = request.transport
    if transport is None:
        return frozenset()
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return frozenset()
    return peer_dns_names(ssl_object.getpeercert())


def peer_is_server(request: web.Request, region: str) -> bool:
    """The caller presented a CA-signed certificate naming ``server.<region>.nomad``."""
    return role_name("server", region) in peer_names(request)


def require_rpc_certificate(
    get_tls: Callable[[], AgentTLS | None],
) -> Callable[..., Awaitable[web.StreamResponse]]:
    """The middleware; ``get_tls`` gives the agent's TLS (None without TLS)."""

    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        tls = get_tls()
        if tls is not None and tls.config.rpc and request.path.startswith(INTERNAL_PREFIX):
            transport = request.transport
            ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
            if ssl_object is None or not ssl_object.getpeercert():
                return web.Response(
                    status=403,
                    text="Permission denied: the internal RPC needs a client certificate",
                    content_type="text/plain",
                )
        return await handler(request)

    return middleware
