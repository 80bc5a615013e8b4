"""A reader that closes a stream (the event stream, ``alloc logs -f``, ``fs stream``) is no fault:
the handler's next write raises ConnectionResetError, which the route wrapper logs at debug, never
as ``request failed unexpectedly`` (a 500 with a traceback, which fails every test that sees it)."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web

from nomadd.agent.http.server import UNEXPECTED_MARKER, Router


def test_a_reader_closing_a_stream_is_not_an_unexpected_error(caplog: pytest.LogCaptureFixture) -> None:
    raised: list[BaseException] = []

    async def endless(agent: Any, req: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(req)
        try:
            while True:
                await resp.write(b"{}\n")
                await asyncio.sleep(0.01)
        except BaseException as err:
            raised.append(err)
            raise

    async def main() -> None:
        app = web.Application()
        agent = SimpleNamespace(acl=SimpleNamespace(enabled=False), server=None)
        Router(agent, app).add("GET", "/v1/event/stream", endless)  # type: ignore[arg-type]
        # as the agent runs it (aiohttp's TestServer would cancel the handler instead)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        try:
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /v1/event/stream HTTP/1.1\r\nHost: x\r\n\r\n")
            assert b"200" in await reader.readline()
            await reader.readuntil(b"{}\n")
            writer.close()  # the reader is gone: wait for the handler's write to notice it
            for _ in range(200):
                if raised:
                    break
                await asyncio.sleep(0.01)
        finally:
            await runner.cleanup()

    with caplog.at_level(logging.DEBUG):
        asyncio.run(main())
    assert raised and isinstance(raised[0], ConnectionResetError), raised
    assert not [r for r in caplog.records if UNEXPECTED_MARKER in r.getMessage()]
    assert any("request closed by the client" in r.getMessage() for r in caplog.records)
