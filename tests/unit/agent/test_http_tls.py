"""The internal RPC wants a client certificate when tls.rpc is on, and peer_is_server tells a
server's certificate from a client's (the servers-only credential), read once per connection."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import replace
from pathlib import Path
from typing import Any
from unittest.mock import patch

from aiohttp import ClientSession, web

from nomadd.agent.http.tls import peer_is_server, require_rpc_certificate
from nomadd.helper.tlsutil import create_ca, create_cert
from nomadd.rpc.tls import AgentTLS
from nomadd.structs.config import TLSConfig


def _files(tmp: Path, ca: tuple[bytes, bytes], kind: str) -> tuple[str, str]:
    cert, key = create_cert(*ca, kind=kind)
    (tmp / f"{kind}.pem").write_bytes(cert)
    (tmp / f"{kind}-key.pem").write_bytes(key)
    return str(tmp / f"{kind}.pem"), str(tmp / f"{kind}-key.pem")


async def _run(tmp_path: Path) -> dict[str, tuple[int, str]]:
    ca = create_ca()
    (tmp_path / "ca.pem").write_bytes(ca[0])
    base = TLSConfig(http=True, rpc=True, ca_file=str(tmp_path / "ca.pem"))
    cert, key = _files(tmp_path, ca, "server")
    tls = AgentTLS(replace(base, cert_file=cert, key_file=key))  # no verify_https_client

    async def handler(request: web.Request) -> web.Response:
        return web.Response(text="server" if peer_is_server(request, "global") else "other")

    app = web.Application(middlewares=[require_rpc_certificate(lambda: tls)])
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls.listener)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def caller(kind: str) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(cafile=str(tmp_path / "ca.pem"))
        ctx.check_hostname = False
        if kind:
            ctx.load_cert_chain(*_files(tmp_path, ca, kind))
        return ctx

    out: dict[str, tuple[int, str]] = {}
    reads = 0
    getpeercert = ssl.SSLObject.getpeercert

    def counted(self: ssl.SSLObject, binary_form: bool = False) -> Any:
        nonlocal reads
        reads += self.server_side
        return getpeercert(self, binary_form)

    callers = {kind: caller(kind) for kind in ("", "client", "server")}

    try:
        with patch.object(ssl.SSLObject, "getpeercert", counted):
            async with ClientSession() as session:
                # a connection per kind (a session pools by SSL context), each used for
                # several requests; the identity of one connection never answers for another
                for kind in ("", "client", "server", "client", ""):
                    for path in ("/v1/status/leader", "/v1/internal/Node.Register") * 2:
                        async with session.post(f"https://127.0.0.1:{port}{path}", ssl=callers[kind]) as resp:
                            key = f"{kind or 'none'} {path}"
                            answer = (resp.status, await resp.text())
                            assert out.setdefault(key, answer) == answer, key
            out["reads"] = (reads, "")
    finally:
        await runner.cleanup()
    return out


def test_internal_rpc_needs_a_certificate_and_servers_are_told_apart(tmp_path: Path) -> None:
    out = asyncio.run(_run(tmp_path))
    assert out["none /v1/status/leader"] == (200, "other")  # the API: a certificate is optional here
    status, text = out["none /v1/internal/Node.Register"]
    assert status == 403 and "needs a client certificate" in text
    assert out["client /v1/internal/Node.Register"] == (200, "other")
    assert out["server /v1/internal/Node.Register"] == (200, "server")
    assert out["reads"] == (3, "")  # at each connection's handshake, not per request


def test_the_listener_refuses_renegotiation(tmp_path: Path) -> None:
    """The per-connection identity above holds because a peer cannot swap its certificate."""
    ca = create_ca()
    (tmp_path / "ca.pem").write_bytes(ca[0])
    cert, key = _files(tmp_path, ca, "server")
    tls = AgentTLS(
        TLSConfig(http=True, rpc=True, ca_file=str(tmp_path / "ca.pem"), cert_file=cert, key_file=key)
    )
    assert tls.listener.options & ssl.OP_NO_RENEGOTIATION
