"""Reading a task's rotated log files (``<alloc>/alloc/logs/<task>.<stdout|stderr>.N``) as one
stream, for ``/v1/client/fs/logs``: from an offset (``origin=start``) or the last bytes
(``origin=end``), then, with ``follow``, new bytes as they are written, across rotations.

Every file is opened through :mod:`nomadd.client.allocfs`, confined to ``root`` (the allocation
directory; default: the logs directory itself): a log file or logs directory a task replaced by a
symlink pointing elsewhere is skipped, never followed out. Blocking reads run through
``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import AsyncIterator, Callable

from nomadd.client.allocfs import list_dir, read_at, size_of
from nomadd.structs.errors import RPCError

logger = logging.getLogger(__name__)

__all__ = ["CHUNK_BYTES", "FOLLOW_POLL_S", "stream_logs"]

CHUNK_BYTES = 64 * 1024
FOLLOW_POLL_S = 0.2


def _sizes(root: str, directory: str, base: str) -> list[tuple[int, str, int]]:
    """(index, path inside ``root``, size) of the ``<base>.<n>`` files, oldest first."""
    pattern = re.compile(re.escape(base) + r"\.(\d+)$")
    rel = os.path.relpath(directory, root)
    try:
        names = [i.name for i in list_dir(root, rel)]
    except (RPCError, OSError):
        return []
    out = []
    for name in names:
        m = pattern.match(name)
        if not m:
            continue
        path = f"{rel}/{name}"
        try:
            size = size_of(root, path)
        except (RPCError, OSError) as err:
            logger.warning("log file skipped path=%s err=%s", path, err)
            continue
        if size >= 0:
            out.append((int(m.group(1)), path, size))
    return sorted(out)


def _read(root: str, path: str, offset: int, limit: int) -> bytes:
    try:
        return read_at(root, path, offset, limit)
    except (RPCError, OSError):
        return b""


async def stream_logs(
    directory: str,
    base: str,
    *,
    origin: str = "start",
    offset: int = 0,
    follow: bool = False,
    finished: Callable[[], bool] = lambda: True,
    root: str = "",
) -> AsyncIterator[bytes]:
    """Yield chunks of the concatenated files. With ``follow`` it keeps polling until
    ``finished()`` is true and nothing new arrived."""
    root = root or directory
    files = await asyncio.to_thread(_sizes, root, directory, base)
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
        files = await asyncio.to_thread(_sizes, root, directory, base)
        progressed = False
        for index, path, size in files:
            if index < pos_index:
                continue
            if index > pos_index:
                pos_index, pos_off = index, 0
            while pos_off < size:
                data = await asyncio.to_thread(_read, root, path, pos_off, CHUNK_BYTES)
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
                files = await asyncio.to_thread(_sizes, root, directory, base)
                if not any(i > pos_index or (i == pos_index and s > pos_off) for i, _, s in files):
                    return
                continue
            await asyncio.sleep(FOLLOW_POLL_S)
