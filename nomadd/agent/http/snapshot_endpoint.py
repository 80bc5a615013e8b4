"""``GET /v1/operator/snapshot`` (save) and ``PUT /v1/operator/snapshot`` (restore), as Nomad's.

GET answers the archive bytes (``application/x-gzip``) with ``X-Nomad-Index`` and a
``Digest: sha-256=...`` header. PUT takes the archive as the request body (streamed, not
bounded by the JSON body limit), checks it whole (:func:`read_archive`: a corrupt, truncated or
unknown-format file is a 400 and nothing is proposed), then hands it to the leader in
``CHUNK_BYTES`` pieces (``Operator.SnapshotRestoreChunk``) and an empty last one that replaces
the state on every server (each server decodes the staged archive before it, off the Raft
thread: nomadd/server/fsm/snapshot.py).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import time
import uuid
from typing import TYPE_CHECKING

from aiohttp import web

from nomadd.agent.http.internal_endpoint import call, envelope
from nomadd.helper.snapshot_archive import SnapshotError, read_archive
from nomadd.server.snapshot_endpoint import CHUNK_BYTES
from nomadd.structs.errors import NomaddError, RPCError, ValidationError
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


async def snapshot_save(agent: Agent, req: web.Request) -> web.StreamResponse:
    reply = await call(agent, OPERATOR_SNAPSHOT_SAVE, SnapshotSaveRequest(**envelope(req)))
    digest = base64.b64encode(hashlib.sha256(reply.archive).digest()).decode()
    headers = {
        "X-Nomad-Index": str(reply.meta.index),
        "X-Nomad-KnownLeader": "true" if reply.meta.known_leader else "false",
        "X-Nomad-LastContact": str(reply.meta.last_contact_ms),
        "Digest": f"sha-256={digest}",
    }
    return web.Response(body=reply.archive, content_type="application/x-gzip", headers=headers)


async def _read_body(req: web.Request) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := await req.content.read(CHUNK_BYTES):
        size += len(chunk)
        if size > MAX_SNAPSHOT_BYTES:
            raise ValidationError(f"snapshot is larger than {MAX_SNAPSHOT_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def snapshot_restore(agent: Agent, req: web.Request) -> object:
    archive = await _read_body(req)
    try:
        await asyncio.to_thread(read_archive, archive)  # refused before anything changes
    except SnapshotError as err:
        raise ValidationError(str(err)) from None
    sha = hashlib.sha256(archive).hexdigest()
    # the data chunks, then an empty last one: it commits what the servers decoded meanwhile
    total = -(-len(archive) // CHUNK_BYTES) + 1
    restore_id = str(uuid.uuid4())
    env = envelope(req)
    for seq in range(total):
        chunk = archive[seq * CHUNK_BYTES : (seq + 1) * CHUNK_BYTES]
        request = SnapshotRestoreChunkRequest(
            **env, restore_id=restore_id, seq=seq, total=total, sha256=sha, data=chunk
        )
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
