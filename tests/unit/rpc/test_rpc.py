"""Internal RPC: wire format, error round trip, registry, client against a real aiohttp app."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass

import pytest
from aiohttp import web

from nomadd.rpc import (
    MSGPACK_CONTENT_TYPE,
    RPCClient,
    RPCRegistry,
    decode_request,
    encode_request,
    error_reply,
    ok_reply,
    parse_reply,
)
from nomadd.structs.errors import NoLeaderError, RPCError, UnknownNodeError, ValidationError
from nomadd.structs.requests import Envelope, Method


@dataclass(frozen=True, slots=True, kw_only=True)
class EchoRequest(Envelope):
    text: str = ""
    ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class EchoReply:
    text: str = ""
    forwarded: bool = False


ECHO = Method("Echo.Echo", EchoRequest, EchoReply)
FAIL_VALIDATION = Method("Fail.Validation", EchoRequest, EchoReply)
FAIL_LEADER = Method("Fail.Leader", EchoRequest, EchoReply)


def test_reply_round_trip_and_typed_errors() -> None:
    assert parse_reply(EchoReply, ok_reply(EchoReply(text="x"))) == EchoReply(text="x")
    with pytest.raises(UnknownNodeError) as exc:
        parse_reply(EchoReply, error_reply(UnknownNodeError("node not found")))
    assert exc.value.code == 404
    assert exc.value.message == "node not found"
    with pytest.raises(RPCError, match="malformed"):
        parse_reply(EchoReply, b"\xc1")


def test_requests_are_type_checked_on_decode() -> None:
    req = EchoRequest(text="hi", ids=("a", "b"), namespace="ns", allow_stale=True)
    assert decode_request(EchoRequest, encode_request(req)) == req
    # the shape that used to crash a handler: a scalar where a list belongs
    bad = encode_request(EchoRequest()).replace(b"\xa3ids\x90", b"\xa3ids\x05")
    with pytest.raises(ValidationError, match=r"^ids: expected array"):
        decode_request(EchoRequest, bad)
    with pytest.raises(ValidationError, match="malformed"):
        decode_request(EchoRequest, b"\xc1")
    with pytest.raises(ValidationError, match="not a map"):
        decode_request(EchoRequest, b"\x05")


def test_registry_rejects_bad_and_duplicate_names() -> None:
    reg = RPCRegistry()

    async def h(req: EchoRequest) -> EchoReply:
        return EchoReply()

    ping = Method("Status.Ping", EchoRequest, EchoReply)
    reg.register(ping, h, kind="local")
    with pytest.raises(ValueError, match="twice"):
        reg.register(ping, h, kind="local")
    with pytest.raises(ValueError, match="Endpoint.Method"):
        reg.register(Method("Ping", EchoRequest, EchoReply), h, kind="local")
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
        async def handler(req: web.Request) -> web.Response:
            method = req.match_info["method"]
            args = decode_request(EchoRequest, await req.read())
            if method == "Echo.Echo":
                body, status = ok_reply(EchoReply(text=args.text, forwarded=args.forwarded)), 200
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
            assert await client.call(addr, ECHO, EchoRequest(text="x")) == EchoReply(text="x")
            fwd = await client.call(addr, ECHO, EchoRequest(forwarded=True))
            assert fwd.forwarded
            with pytest.raises(ValidationError, match="bad field"):
                await client.call(addr, FAIL_VALIDATION, EchoRequest())
            with pytest.raises(NoLeaderError):
                await client.call(addr, FAIL_LEADER, EchoRequest())
            closed = f"127.0.0.1:{_free_port()}"
            with pytest.raises(RPCError, match="failed"):
                await client.call(closed, ECHO, EchoRequest(), timeout=2)
        finally:
            await client.close()
            await runner.cleanup()

    asyncio.run(main())
