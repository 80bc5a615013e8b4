"""``GET /v1/operator/snapshot`` through the real route table (in-process, one FakeServer): the
server that takes the archive streams it from the file its forked child wrote, in pieces; the
archive's bytes never go through the RPC reply (held whole) on that server."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from nomadd.agent.config import AgentConfig
from nomadd.agent.http import snapshot_endpoint as http_snapshot
from nomadd.agent.http.server import HTTPServer
from nomadd.helper.snapshot_archive import read_archive
from nomadd.server import snapshot_endpoint
from nomadd.server.snapshot_endpoint import SnapshotEndpoint
from nomadd.server.state.store import decode_dump
from tests.unit.server.fakes import FakeServer
from tests.unit.server.test_snapshot import _fill, _tables


def test_the_leader_streams_the_archive_from_its_file(monkeypatch: pytest.MonkeyPatch) -> None:
    async def whole(*_: Any) -> Any:
        raise AssertionError("the archive went through the RPC reply (held whole)")

    monkeypatch.setattr(snapshot_endpoint, "take_archive", whole)
    monkeypatch.setattr(http_snapshot, "SAVE_PIECE_BYTES", 1024)
    pieces: list[int] = []
    real_take = snapshot_endpoint.take_archive_file

    async def take(ctx: Any) -> Any:
        saved = await real_take(ctx)
        read = saved.file.read

        def spy(n: int = -1) -> bytes:
            data = read(n)
            pieces.append(len(data))
            return data

        saved.file.read = spy  # type: ignore[method-assign]
        return saved

    monkeypatch.setattr(snapshot_endpoint, "take_archive_file", take)

    async def main() -> None:
        fake = FakeServer()
        fake.snapshots = SnapshotEndpoint(fake.ctx)  # type: ignore[attr-defined]
        fake.snapshots.register(fake.registry)  # type: ignore[attr-defined]
        await _fill(fake, jobs=20)
        agent = SimpleNamespace(
            server=fake, client=None, acl=fake.ctx.acl, config=AgentConfig(), reload_hook=None, tls=None
        )
        async with TestClient(TestServer(HTTPServer(agent).app)) as client:  # type: ignore[arg-type]
            async with asyncio.timeout(30):
                resp = await client.get("/v1/operator/snapshot")
                body = await resp.read()
        assert resp.status == 200, body[:200]
        assert resp.headers["Content-Type"] == "application/x-gzip"
        assert int(resp.headers["Content-Length"]) == len(body)
        want = base64.b64encode(hashlib.sha256(body).digest()).decode()
        assert resp.headers["Digest"] == f"sha-256={want}"
        meta, state = read_archive(body)
        assert int(resp.headers["X-Nomad-Index"]) == meta.index == fake.store.snapshot().index
        _, tables = decode_dump(state)
        assert {n: dict(rows) for n, rows in tables.items() if rows} == _tables(fake.store)
        assert len(body) > 3 * 1024 and max(pieces) <= 1024  # sent as it is read, a piece at a time

    asyncio.run(main())
