"""Scheduled snapshots (beyond Nomad's open-source edition): the leader writes an archive of the
state every ``server.snapshot.interval`` into ``server.snapshot.path`` and keeps the newest
``server.snapshot.retain`` of them.

Files are ``nomadd-<UTC time>-<index>.snap``, written to a temporary name, fsync'ed and renamed,
so a half-written file never carries the final name; ``nomadd operator snapshot restore`` takes
any of them. Only the leader writes (one copy per interval for the cluster, of committed state);
a failed write is logged and retried at the next interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from pathlib import Path

from nomadd.server.context import ServerContext
from nomadd.server.periodic import PeriodicLeaderTask
from nomadd.server.snapshot_endpoint import take_archive

logger = logging.getLogger(__name__)

__all__ = ["PREFIX", "SnapshotSchedule", "prune", "write_snapshot"]

PREFIX = "nomadd-"
SUFFIX = ".snap"


def write_snapshot(directory: Path, archive: bytes, index: int, now: float | None = None) -> Path:
    """Write ``archive`` durably as a new file in ``directory``; returns its path."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    path = directory / f"{PREFIX}{stamp}-{index:012d}{SUFFIX}"
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        f.write(archive)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


def prune(directory: Path, retain: int) -> list[Path]:
    """Delete all but the newest ``retain`` snapshots (by name: time, then index); returns them."""
    snaps = sorted(p for p in directory.glob(f"{PREFIX}*{SUFFIX}") if p.is_file())
    doomed = snaps[: max(0, len(snaps) - max(1, retain))]
    for p in doomed:
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
    return doomed


class SnapshotSchedule(PeriodicLeaderTask):
    """One archive per ``interval_s`` into ``directory`` while this server leads."""

    name = "snapshot-schedule"

    def __init__(self, ctx: ServerContext, directory: Path, interval_s: float, retain: int) -> None:
        super().__init__()
        self._ctx = ctx
        self._dir = directory
        self._interval = interval_s
        self._retain = retain

    def interval_s(self) -> float:
        return self._interval

    async def tick(self) -> object:
        archive, index = await take_archive(self._ctx)
        path = await asyncio.to_thread(write_snapshot, self._dir, archive, index)
        removed = await asyncio.to_thread(prune, self._dir, self._retain)
        logger.info(
            "scheduled snapshot written path=%s index=%d bytes=%d pruned=%d",
            path,
            index,
            len(archive),
            len(removed),
        )
        return path
