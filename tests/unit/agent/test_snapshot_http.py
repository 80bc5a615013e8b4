"""``PUT /v1/operator/snapshot`` through the real route table (in-process, one FakeServer): the
archive is checked as the body streams in, a bad one is refused (400, nothing proposed) as soon
as it shows, without waiting for the rest of the body."""

from __future__ import annotations

import asyncio
import gzip
import os
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from nomadd.agent.config import AgentConfig
from nomadd.agent.http import snapshot_endpoint as snapshot_http
from nomadd.agent.http.server import HTTPServer
from nomadd.server.snapshot_endpoint import CHUNK_BYTES, SnapshotEndpoint
from nomadd.structs.codec import pack
from nomadd.structs.messages import MessageType
from nomadd.structs.requests.snapshot import OPERATOR_SNAPSHOT_SAVE, SnapshotSaveRequest
from nomadd.structs.requests.variables import VarUpsertEntry
from tests.unit.server.fakes import FakeServer
from tests.unit.server.test_snapshot import _fill, _server, _tables


async def _body(data: bytes, piece: int, then: asyncio.Event | None = None) -> AsyncIterator[bytes]:
    for i in range(0, len(data), piece):
        yield data[i : i + piece]
        await asyncio.sleep(0)
    if then is not None:  # a body that does not end until told
        await then.wait()


def test_restore_checks_the_archive_as_it_streams_and_refuses_a_bad_one_early() -> None:
    async def main() -> None:
        src = _server()
        await _fill(src)
        archive = (await src.rpc(OPERATOR_SNAPSHOT_SAVE, SnapshotSaveRequest())).archive
        fake = FakeServer()
        SnapshotEndpoint(fake.ctx).register(fake.registry)
        agent = SimpleNamespace(
            server=fake, client=None, acl=fake.ctx.acl, config=AgentConfig(), reload_hook=None, tls=None
        )
        http = HTTPServer(agent)  # type: ignore[arg-type]
        async with TestClient(TestServer(http.app)) as client:
            # corrupt from its first bytes, and the body never ends: refused all the same
            never = asyncio.Event()
            entries = len(fake.raft.entries)
            async with asyncio.timeout(10):
                resp = await client.put("/v1/operator/snapshot", data=_body(b"x" * 100_000, 1000, never))
            assert resp.status == 400 and "gzip" in await resp.text()
            never.set()
            # truncated: the body ends early
            resp = await client.put("/v1/operator/snapshot", data=_body(archive[:-20], 300))
            assert resp.status == 400 and "truncated" in await resp.text()
            # corrupt inside the state: a checksum mismatch
            raw = bytearray(gzip.decompress(archive))
            raw[len(raw) // 2] ^= 0xFF
            resp = await client.put("/v1/operator/snapshot", data=_body(gzip.compress(bytes(raw)), 300))
            assert resp.status == 400 and "checksum mismatch" in await resp.text()
            assert len(fake.raft.entries) == entries  # nothing proposed
            # a good archive, in small pieces: restored
            resp = await client.put("/v1/operator/snapshot", data=_body(archive, 300))
            assert resp.status == 200, await resp.text()
            assert _tables(fake.store) == _tables(src.store)

    asyncio.run(main())


def test_the_upload_is_spooled_to_a_file_not_held_while_its_chunks_are_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The edge taking a restore holds one chunk at a time, not the whole upload (held, it
    cost that server the archive's size through the whole restore); the spool file is in the
    agent's data dir, unlinked."""

    async def main() -> None:
        src = _server()
        await _fill(src)
        for i in range(4):  # ~4 MB that do not compress: several chunks
            var = VarUpsertEntry(
                namespace="default", path=f"big/{i}", key_id="k", data=os.urandom(1 << 20), time=1
            )
            await src.raft.apply(MessageType.VAR_UPSERT, pack(var))
        archive = (await src.rpc(OPERATOR_SNAPSHOT_SAVE, SnapshotSaveRequest())).archive
        assert len(archive) > 4 * CHUNK_BYTES
        fake = FakeServer()
        SnapshotEndpoint(fake.ctx).register(fake.registry)
        agent = SimpleNamespace(
            server=fake,
            client=None,
            acl=fake.ctx.acl,
            config=AgentConfig(data_dir=str(tmp_path)),
            reload_hook=None,
            tls=None,
        )
        held: list[int] = []
        send = snapshot_http._send

        async def measured(agent: Any, request: Any) -> None:
            held.append(tracemalloc.get_traced_memory()[0])
            await send(agent, request)

        monkeypatch.setattr(snapshot_http, "_send", measured)
        http = HTTPServer(agent)  # type: ignore[arg-type]
        async with TestClient(TestServer(http.app)) as client:
            tracemalloc.start()
            try:
                resp = await client.put("/v1/operator/snapshot", data=_body(archive, 1 << 16))
            finally:
                tracemalloc.stop()
            assert resp.status == 200, await resp.text()
        assert _tables(fake.store) == _tables(src.store)
        assert len(held) > 5 and held[0] < len(archive) / 2, f"{held[0]} bytes held, archive {len(archive)}"
        assert not os.listdir(tmp_path)

    asyncio.run(main())
