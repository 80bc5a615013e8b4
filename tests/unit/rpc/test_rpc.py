"""Internal RPC: wire format, error round trip, registry, client against a real aiohttp app."""

from __future__ import annotations

import asyncio
import socket

import pytest
from aiohttp import web

from nomadd.rpc import (
    FORWARDED_HEADER,
    MSGPACK_CONTENT_TYPE,
    RPCClient,
    RPCRegistry,
    decode,
    error_reply,
    ok_reply,
    parse_reply,
)
from nomadd.structs.errors import NoLeaderError, RPCError, UnknownNodeError, ValidationError


def test_reply_round_trip_and_typed_errors() -> None:
    assert parse_reply(ok_reply({"a": [1, b"x"]})) == {"a": [1, b"x"]}
    with pytest.raises(UnknownNodeError) as exc:
        parse_reply(error_reply(UnknownNodeError("node not found")))
    assert exc.value.code == 404
    assert exc.value.message == "node not found"
    with pytest.raises(RPCError, match="malformed"):
        parse_reply(b"\xc1")


def test_registry_rejects_bad_and_duplicate_names() -> None:
    reg = RPCRegistry()

    async def h(args: dict[str, object]) -> object:
        return None

    reg.register("Status.Ping", h, kind="local")
    with pytest.raises(ValueError, match="twice"):
        reg.register("Status.Ping", h, kind="local")
    with pytest.raises(ValueError, match="Endpoint.Method"):
        reg.register("Ping", h, kind="local")
    assert reg.lookup("Status.Ping").kind == "local"
    with pytest.raises(RPCError) as exc:
        reg.lookup("Nope.Nope")
    assert exc.value.code == 404


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_client_calls_and_rebuilds_remote_errors() -> None:
    async def main() -> None:
        seen_forwarded: list[str | None] = []

        async def handler(req: web.Request) -> web.Response:
            method = req.match_info["method"]
            args = decode(await req.read())
            seen_forwarded.append(req.headers.get(FORWARDED_HEADER))
            if method == "Echo.Echo":
                body, status = ok_reply(args), 200
            elif method == "Fail.Validation":
                body, status = error_reply(ValidationError("bad field")), 400
            else:
                body, status = error_reply(NoLeaderError()), 500
            return web.Response(body=body, status=status, content_type=MSGPACK_CONTENT_TYPE)

        async def plain(req: web.Request) -> web.Response:
            return web.Response(status=404, text="Invalid URL path")

        app = web.Application()
        app.router.add_post("/v1/internal/{method}", handler)
        app.router.add_get("/", plain)
        runner = web.AppRunner(app)
        await runner.setup()
        port = _free_port()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        client = RPCClient()
        try:
            addr = f"127.0.0.1:{port}"
            assert await client.call(addr, "Echo.Echo", {"x": 1}) == {"x": 1}
            assert await client.call(addr, "Echo.Echo", {}, forwarded=True) == {}
            assert seen_forwarded == [None, "1"]
            with pytest.raises(ValidationError, match="bad field"):
                await client.call(addr, "Fail.Validation", {})
            with pytest.raises(NoLeaderError):
                await client.call(addr, "Fail.Leader", {})
            closed = f"127.0.0.1:{_free_port()}"
            with pytest.raises(RPCError, match="failed"):
                await client.call(closed, "Echo.Echo", {}, timeout=2)
        finally:
            await client.close()
            await runner.cleanup()

    asyncio.run(main())
