"""Reading the rotated task logs the executor writes (for ``/v1/client/fs/logs/:alloc`` and
``nomadd alloc logs [-f]``).

A log stream is the concatenation of ``<log_dir>/<task>.<stream>.N`` in index order (older files
may already be rotated away). Offsets count bytes in that concatenation of the files that still
exist: ``origin="start"`` from its beginning, ``origin="end"`` back from its end (Nomad's
``offset``/``origin`` query parameters).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable

from nomadd.drivers.logrotate import log_files

STREAMS = ("stdout", "stderr")
READ_CHUNK = 64 * 1024
# How often follow_log looks for new bytes or a new file.
FOLLOW_POLL_S = 0.25


def _files(log_dir: str, task: str, stream: str) -> list[tuple[int, str, int]]:
    if stream not in STREAMS:
        raise ValueError(f"log type must be stdout or stderr, not {stream!r}")
    out = []
    for idx, path in log_files(log_dir, f"{task}.{stream}"):
        try:
            out.append((idx, path, os.path.getsize(path)))
        except FileNotFoundError:  # rotated away meanwhile
            continue
    return out


def _start_position(files: list[tuple[int, str, int]], offset: int, origin: str) -> tuple[int, int]:
    """(file index, byte position in it) where reading starts."""
    if not files:
        return 0, 0
    total = sum(size for _, _, size in files)
    if origin == "end":
        skip = max(0, total - max(0, offset))
    elif origin == "start":
        skip = min(max(0, offset), total)
    else:
        raise ValueError(f"origin must be start or end, not {origin!r}")
    for idx, _, size in files:
        if skip < size:
            return idx, skip
        skip -= size
    last_idx, _, last_size = files[-1]
    return last_idx, last_size


def read_log(
    log_dir: str, task: str, stream: str = "stdout", *, offset: int = 0, origin: str = "start"
) -> bytes:
    """The log bytes from the position ``offset``/``origin`` names to the current end.

    Blocking (file reads): call through ``asyncio.to_thread``.
    """
    files = _files(log_dir, task, stream)
    idx, pos = _start_position(files, offset, origin)
    chunks = []
    for i, path, _ in files:
        if i < idx:
            continue
        try:
            with open(path, "rb") as f:
                f.seek(pos if i == idx else 0)
                chunks.append(f.read())
        except FileNotFoundError:
            continue
    return b"".join(chunks)


def _read_from(path: str, pos: int) -> bytes:
    try:
        with open(path, "rb") as f:
            f.seek(pos)
            return f.read(READ_CHUNK)
    except FileNotFoundError:
        return b""


async def follow_log(
    log_dir: str,
    task: str,
    stream: str = "stdout",
    *,
    offset: int = 0,
    origin: str = "start",
    done: Callable[[], bool] | None = None,
    poll_s: float = FOLLOW_POLL_S,
) -> AsyncIterator[bytes]:
    """Yield log bytes from ``offset``/``origin`` on, then new bytes as they are written,
    across rotations. Ends when ``done()`` is true and everything written was yielded (e.g. the
    task is dead), or when the caller stops iterating (cancellation)."""
    files = await asyncio.to_thread(_files, log_dir, task, stream)
    idx, pos = _start_position(files, offset, origin)
    while True:
        finished = done() if done is not None else False
        path = os.path.join(log_dir, f"{task}.{stream}.{idx}")
        data = await asyncio.to_thread(_read_from, path, pos)
        if data:
            pos += len(data)
            yield data
            continue
        files = await asyncio.to_thread(_files, log_dir, task, stream)
        newer = [i for i, _, _ in files if i > idx]
        if newer:
            # The writer moved on, so the current file is complete: drain what was written to
            # it since the read above (unless it was rotated away), then go to the next one.
            while rest := await asyncio.to_thread(_read_from, path, pos):
                pos += len(rest)
                yield rest
            idx, pos = min(newer), 0
            continue
        if finished:
            return
        await asyncio.sleep(poll_s)
