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

A connection's peer certificate is decoded once, by asyncio at the end of the handshake
(``get_extra_info("peercert")``); ``SSLObject.getpeercert()`` would decode it again on every call
(~35 µs, twice per internal RPC). That is exact because the certificate cannot change while the
connection lives: the listener refuses renegotiation (``nomadd.rpc.tls``, as Go's TLS servers
do), and a certificate rotated by SIGHUP applies to new connections only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from nomadd.helper.tlsnames import role_name
from nomadd.rpc.tls import AgentTLS, peer_dns_names

__all__ = [
    "INTERNAL_PREFIX",
    "PeerCertificate",
    "peer_certificate",
    "peer_is_server",
    "peer_names",
    "require_rpc_certificate",
]

INTERNAL_PREFIX = "/v1/internal/"


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerCertificate:
    """What the caller's verified certificate says (``present`` False: none, or no TLS)."""

    present: bool = False
    names: frozenset[str] = frozenset()


_NONE = PeerCertificate()


def peer_certificate(request: web.Request) -> PeerCertificate:
    """The caller's certificate as its connection's handshake verified it."""
    transport = request.transport
    cert = transport.get_extra_info("peercert") if transport is not None else None
    if not cert:
        return _NONE
    return PeerCertificate(present=True, names=peer_dns_names(cert))


def peer_names(request: web.Request) -> frozenset[str]:
    return peer_certificate(request).names


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
        internal = tls is not None and tls.config.rpc and request.path.startswith(INTERNAL_PREFIX)
        if internal and not peer_certificate(request).present:
            return web.Response(
                status=403,
                text="Permission denied: the internal RPC needs a client certificate",
                content_type="text/plain",
            )
        return await handler(request)

    return middleware
