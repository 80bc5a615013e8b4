"""Reading a task's rotated log files (``<alloc>/alloc/logs/<task>.<stdout|stderr>.N``) as one
stream, for ``/v1/client/fs/logs``: from an offset (``origin=start``) or the last bytes
(``origin=end``), then, with ``follow``, new bytes as they are written, across rotations.

Blocking reads run through ``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable

from nomadd.drivers.logrotate import log_files

__all__ = ["CHUNK_BYTES", "FOLLOW_POLL_S", "stream_logs"]

CHUNK_BYTES = 64 * 1024
FOLLOW_POLL_S = 0.2


def _sizes(directory: str, base: str) -> list[tuple[int, str, int]]:
    out = []
    for index, path in log_files(directory, base):
        try:
            out.append((index, path, os.path.getsize(path)))
        except OSError:
            continue
    return out


def _read(path: str, offset: int, limit: int) -> bytes:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read(limit)
    except OSError:
        return b""


async def stream_logs(
    directory: str,
    base: str,
    *,
    origin: str = "start",
    offset: int = 0,
    follow: bool = False,
    finished: Callable[[], bool] = lambda: True,
) -> AsyncIterator[bytes]:
    """Yield chunks of the concatenated files. With ``follow`` it keeps polling until
    ``finished()`` is true and nothing new arrived."""
    files = await asyncio.to_thread(_sizes, directory, base)
    total = sum(size for _, _, size in files)
    start = max(0, offset) if origin == "start" else max(0, total - max(0, offset))
    # position: (file index, byte offset in it)
    pos_index, pos_off = (files[0][0], 0) if files else (0, 0)
    skip = start
    for index, _, size in files:
        if skip < size:
            pos_index, pos_off = index, skip
            break
        skip -= size
    else:
        if files:
            pos_index, pos_off = files[-1][0], files[-1][2]
    while True:
        files = await asyncio.to_thread(_sizes, directory, base)
        progressed = False
        for index, path, size in files:
            if index < pos_index:
                continue
            if index > pos_index:
                pos_index, pos_off = index, 0
            while pos_off < size:
                data = await asyncio.to_thread(_read, path, pos_off, CHUNK_BYTES)
                if not data:
                    break
                pos_off += len(data)
                progressed = True
                yield data
        if not follow:
            return
        if not progressed:
            if finished():
                # one last look: the task may have written just before it ended
                files = await asyncio.to_thread(_sizes, directory, base)
                if not any(i > pos_index or (i == pos_index and s > pos_off) for i, _, s in files):
                    return
                continue
            await asyncio.sleep(FOLLOW_POLL_S)
