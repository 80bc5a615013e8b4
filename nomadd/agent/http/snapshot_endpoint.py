"""``GET /v1/operator/snapshot`` (save) and ``PUT /v1/operator/snapshot`` (restore), as Nomad's.

GET answers the archive bytes (``application/x-gzip``) with ``X-Nomad-Index`` and a
``Digest: sha-256=...`` header. A server that takes the archive itself (the leader, or any
server for ``?stale``) streams it from the file its forked child wrote it into
(``SnapshotEndpoint.save_here``); otherwise its bytes come from the leader through the RPC.

PUT takes the archive as the request body (streamed, not bounded by the JSON body limit,
spooled to an unlinked file in the agent's data dir, never held in memory), checks it as it
arrives (:func:`read_archive_stream`: a corrupt, truncated or unknown-format file is a 400 and
nothing is proposed), then hands it to the leader in ``CHUNK_BYTES`` pieces
(``Operator.SnapshotRestoreChunk``) and an empty last one that replaces the state on every
server (each server decodes the archive as the chunks are applied, in a thread:
nomadd/server/fsm/snapshot.py).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import tempfile
import time
import uuid
from typing import TYPE_CHECKING, Any, BinaryIO

from aiohttp import web

from nomadd.agent.http.internal_endpoint import call, envelope
from nomadd.helper.snapshot_archive import ArchivePipe, SnapshotError, read_archive_stream
from nomadd.server.fsm.snapshot import read_at, write_at
from nomadd.server.snapshot_endpoint import CHUNK_BYTES, SavedArchive
from nomadd.structs.errors import NomaddError, RPCError, ValidationError
from nomadd.structs.requests import QueryMeta
from nomadd.structs.requests.snapshot import (
    OPERATOR_SNAPSHOT_RESTORE_CHUNK,
    OPERATOR_SNAPSHOT_SAVE,
    SnapshotRestoreChunkRequest,
    SnapshotSaveRequest,
)

if TYPE_CHECKING:
    from nomadd.agent.agent import Agent
    from nomadd.agent.http.server import Router

logger = logging.getLogger(__name__)

__all__ = ["MAX_SNAPSHOT_BYTES", "register"]

MAX_SNAPSHOT_BYTES = 4 * 1024 * 1024 * 1024
CHUNK_RETRY_S = 300.0  # how long one chunk is retried (elections, a slow decode on the leader)
CHUNK_RETRY_WAIT_S = 0.5
SAVE_PIECE_BYTES = 1 << 20  # of a saved archive read from its file and sent at a time


async def snapshot_save(agent: Agent, req: web.Request) -> web.StreamResponse:
    request = SnapshotSaveRequest(**envelope(req))
    server = agent.server
    if server is not None:  # the route's ACL rule (management) was checked; the RPC is open to API callers
        here = await server.snapshots.save_here(request)
        if here is not None:  # taken here: streamed from its file, never held
            saved, meta = here
            try:
                return await _stream(req, saved, meta)
            finally:
                saved.close()
    # taken by another server (the leader, another region): its bytes come back through the RPC
    reply = await call(agent, OPERATOR_SNAPSHOT_SAVE, request)
    digest = hashlib.sha256(reply.archive).digest()
    return web.Response(
        body=reply.archive, content_type="application/x-gzip", headers=_headers(reply.meta, digest)
    )


def _headers(meta: QueryMeta, sha256: bytes) -> dict[str, str]:
    return {
        "X-Nomad-Index": str(meta.index),
        "X-Nomad-KnownLeader": "true" if meta.known_leader else "false",
        "X-Nomad-LastContact": str(meta.last_contact_ms),
        "Digest": f"sha-256={base64.b64encode(sha256).decode()}",
    }


async def _stream(req: web.Request, saved: SavedArchive, meta: QueryMeta) -> web.StreamResponse:
    """The archive file sent as the body, read a piece at a time in a thread."""
    resp = web.StreamResponse(headers=_headers(meta, bytes.fromhex(saved.sha256)))
    resp.content_type = "application/x-gzip"
    resp.content_length = saved.size
    await resp.prepare(req)
    while piece := await asyncio.to_thread(saved.file.read, SAVE_PIECE_BYTES):
        await resp.write(piece)
    await resp.write_eof()
    return resp


def _retrieved(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()  # an abandoned check's outcome (the pipe was cancelled): nobody asks


async def _receive(req: web.Request, spool: BinaryIO) -> tuple[int, str]:
    """The body written to ``spool`` (its size) and its sha256, the archive checked as it arrives
    (:func:`read_archive_stream` in a thread reading what is fed to an :class:`ArchivePipe`):
    its decompressed state is never held, and a bad file is refused as soon as it shows. The
    body goes to a file, not memory: held until its chunks were sent, it cost the server taking
    the upload the archive's size (263 MB at a million allocations) through the whole restore,
    up to the moment its old and new state were both alive."""
    pipe = ArchivePipe()
    check = asyncio.get_running_loop().run_in_executor(None, read_archive_stream, pipe)
    digest = hashlib.sha256()
    size = 0
    started = time.monotonic()
    try:
        while (piece := await req.content.read(CHUNK_BYTES)) and not check.done():
            if size + len(piece) > MAX_SNAPSHOT_BYTES:
                raise ValidationError(f"snapshot is larger than {MAX_SNAPSHOT_BYTES} bytes")
            digest.update(piece)
            pipe.feed(piece)  # checked as it arrives
            await asyncio.to_thread(write_at, spool.fileno(), piece, size)
            size += len(piece)
        pipe.close()
        received = time.monotonic()
        await check  # refused before anything is proposed
        logger.info(
            "snapshot upload received and checked bytes=%d received_s=%.2f checked_s=%.2f",
            size,
            received - started,
            time.monotonic() - started,
        )
    except SnapshotError as err:
        raise ValidationError(str(err)) from None
    except BaseException:
        pipe.cancel()
        check.add_done_callback(_retrieved)
        raise
    return size, digest.hexdigest()


async def snapshot_restore(agent: Agent, req: web.Request) -> object:
    with tempfile.TemporaryFile(prefix="nomadd-upload-", dir=agent.config.data_dir or None) as spool:
        size, sha = await _receive(req, spool)
        # the data chunks, then an empty last one: it commits what the servers decoded meanwhile
        total = -(-size // CHUNK_BYTES) + 1
        restore_id = str(uuid.uuid4())
        env = envelope(req)
        for seq in range(total):
            offset = seq * CHUNK_BYTES
            data = await asyncio.to_thread(read_at, spool.fileno(), min(CHUNK_BYTES, size - offset), offset)
            request = SnapshotRestoreChunkRequest(
                **env, restore_id=restore_id, seq=seq, total=total, sha256=sha, data=data
            )
            del data
            await _send(agent, request)
    return None


async def _send(agent: Agent, request: SnapshotRestoreChunkRequest) -> None:
    """One chunk, sent again while the cluster has no leader or the outcome is unknown (a
    leader change mid-upload); a rejection (400: bad archive, restore replaced) is final."""
    deadline = time.monotonic() + CHUNK_RETRY_S
    retry: NomaddError
    while True:
        try:
            await call(agent, OPERATOR_SNAPSHOT_RESTORE_CHUNK, request)
            return
        except RPCError as err:
            if err.code < 500 or time.monotonic() > deadline:
                raise
            retry = err
        except NomaddError as err:
            if time.monotonic() > deadline:
                raise
            retry = err
        logger.warning(
            "snapshot restore chunk failed, sending it again restore_id=%s seq=%d err=%s",
            request.restore_id,
            request.seq,
            retry,
        )
        await asyncio.sleep(CHUNK_RETRY_WAIT_S)


def register(router: Router) -> None:
    router.add("GET", "/v1/operator/snapshot", snapshot_save)
    router.add("PUT", "/v1/operator/snapshot", snapshot_restore)
