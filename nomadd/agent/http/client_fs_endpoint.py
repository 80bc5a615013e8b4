"""The allocation file system: ``GET /v1/client/fs/ls|stat|cat|readat|stream/:alloc?path=``
(Nomad's ``command/agent/fs_endpoint.go``).

``ls`` answers a list of Nomad's ``AllocFileInfo``, ``stat`` one; ``cat`` the file's bytes;
``readat`` ``limit`` bytes from ``offset``; ``stream`` Nomad's ``StreamFrame`` JSON objects
(``Offset`` where the frame's data ends, ``Data`` base64, ``File``, ``FileEvent``
``file deleted``/``file truncated``), from ``offset`` counted from ``origin=start|end``, following
the file (``follow``, default true; it ends once the allocation is terminal and the file is
drained) with a ``{}`` heartbeat every :data:`HEARTBEAT_S`. Every path
is resolved inside the allocation directory by :mod:`nomadd.client.allocfs` (a path that leaves
it is a 400). An allocation on another node is forwarded to it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from typing import TYPE_CHECKING

from aiohttp import web

from nomadd.agent.http.client_endpoint import runner_or_forward
from nomadd.agent.http.server import parse_uint64
from nomadd.client import allocfs
from nomadd.structs.errors import NotFoundError, ValidationError

if TYPE_CHECKING:
    from nomadd.agent.agent import Agent
    from nomadd.agent.http.server import Router

logger = logging.getLogger(__name__)

CHUNK_BYTES = 64 * 1024
POLL_S = 0.25
HEARTBEAT_S = 10.0


def _bool(req: web.Request, name: str, default: bool) -> bool:
    raw = req.query.get(name, "")
    if not raw:
        return default
    if raw.lower() in ("1", "true"):
        return True
    if raw.lower() in ("0", "false"):
        return False
    raise ValidationError(f"Failed to parse {name} parameter: {raw[:64]!r} is not a boolean")


def _path(req: web.Request) -> str:
    return req.query.get("path", "") or "/"


async def fs_ls(agent: Agent, req: web.Request) -> object:
    runner = await runner_or_forward(agent, req, "alloc")
    if isinstance(runner, web.StreamResponse):
        return runner
    infos = await asyncio.to_thread(allocfs.list_dir, runner.alloc_dir.path, _path(req))
    return [i.to_api() for i in infos]


async def fs_stat(agent: Agent, req: web.Request) -> object:
    runner = await runner_or_forward(agent, req, "alloc")
    if isinstance(runner, web.StreamResponse):
        return runner
    info = await asyncio.to_thread(allocfs.file_info, runner.alloc_dir.path, _path(req))
    return info.to_api()


async def _send_file(req: web.Request, root: str, path: str, offset: int, limit: int) -> web.StreamResponse:
    """``limit`` bytes (negative: all) of ``path`` from ``offset``, in chunks."""
    first = await asyncio.to_thread(
        allocfs.read_at, root, path, offset, min(limit, CHUNK_BYTES) if limit >= 0 else CHUNK_BYTES
    )
    resp = web.StreamResponse(status=200)
    resp.content_type = "text/plain"
    await resp.prepare(req)
    sent, chunk = 0, first
    while chunk:
        await resp.write(chunk)
        sent += len(chunk)
        want = CHUNK_BYTES if limit < 0 else min(CHUNK_BYTES, limit - sent)
        if want <= 0:
            break
        try:
            chunk = await asyncio.to_thread(allocfs.read_at, root, path, offset + sent, want)
        except (NotFoundError, ValidationError):
            break  # removed or replaced meanwhile: what was sent is what there was
    await resp.write_eof()
    return resp


async def fs_cat(agent: Agent, req: web.Request) -> object:
    runner = await runner_or_forward(agent, req, "alloc")
    if isinstance(runner, web.StreamResponse):
        return runner
    return await _send_file(req, runner.alloc_dir.path, _path(req), 0, -1)


async def fs_readat(agent: Agent, req: web.Request) -> object:
    runner = await runner_or_forward(agent, req, "alloc")
    if isinstance(runner, web.StreamResponse):
        return runner
    q = req.query
    if "offset" not in q or "limit" not in q:
        raise ValidationError("must provide both offset and limit")
    offset = parse_uint64("offset", q["offset"])
    limit = parse_uint64("limit", q["limit"])
    return await _send_file(req, runner.alloc_dir.path, _path(req), offset, limit)


def _frame(path: str, offset: int, data: bytes = b"", event: str = "") -> bytes:
    frame: dict[str, object] = {"Offset": offset, "File": path}
    if data:
        frame["Data"] = base64.b64encode(data).decode()
    if event:
        frame["FileEvent"] = event
    return json.dumps(frame).encode()


async def fs_stream(agent: Agent, req: web.Request) -> object:
    runner = await runner_or_forward(agent, req, "alloc")
    if isinstance(runner, web.StreamResponse):
        return runner
    q, root, path = req.query, runner.alloc_dir.path, _path(req)
    origin = q.get("origin", "start") or "start"
    if origin not in ("start", "end"):
        raise ValidationError('origin must be "start" or "end"')
    offset = parse_uint64("offset", q.get("offset", "0") or "0")
    follow = _bool(req, "follow", True)
    size = await asyncio.to_thread(allocfs.size_of, root, path)
    if size < 0:
        raise NotFoundError(f"no such file: {path}")
    pos = min(offset, size) if origin == "start" else max(0, size - offset)
    resp = web.StreamResponse(status=200)
    resp.content_type = "application/json"
    await resp.prepare(req)
    last_sent = time.monotonic()
    try:
        while True:
            size = await asyncio.to_thread(allocfs.size_of, root, path)
            if size < 0:
                await resp.write(_frame(path, pos, event="file deleted"))
                break
            if size < pos:
                pos = 0
                await resp.write(_frame(path, pos, event="file truncated"))
            if size > pos:
                data = await asyncio.to_thread(allocfs.read_at, root, path, pos, CHUNK_BYTES)
                pos += len(data)
                await resp.write(_frame(path, pos, data))
                last_sent = time.monotonic()
                continue
            if not follow or runner.terminal():  # a finished allocation's files no longer grow
                break
            if time.monotonic() - last_sent >= HEARTBEAT_S:
                await resp.write(b"{}")
                last_sent = time.monotonic()
            await asyncio.sleep(POLL_S)
    except (ValidationError, NotFoundError) as err:  # replaced by something out of bounds
        logger.debug("fs stream ended alloc_id=%s path=%s err=%s", runner.id, path, err)
    except (ConnectionResetError, asyncio.CancelledError):
        logger.debug("fs stream closed by the reader alloc_id=%s path=%s", runner.id, path)
        raise
    await resp.write_eof()
    return resp


def register(router: Router) -> None:
    router.add("GET", "/v1/client/fs/ls/{alloc}", fs_ls)
    router.add("GET", "/v1/client/fs/stat/{alloc}", fs_stat)
    router.add("GET", "/v1/client/fs/cat/{alloc}", fs_cat)
    router.add("GET", "/v1/client/fs/readat/{alloc}", fs_readat)
    router.add("GET", "/v1/client/fs/stream/{alloc}", fs_stream)
