"""Raft full dumps (pysyncobj's custom serializer hooks), written by a forked child, paced.

The file is ``gzip(pickle((DUMP_FORMAT, store msgpack, pysyncobj tail data)))``. pysyncobj calls
:meth:`DumpSerializer.serialize` on its tick thread and, for a custom serializer, expects the
file written before it returns. Encoding the store costs O(state) of Python work (seconds at a
million allocations): on the tick thread it would stall heartbeats, and on a thread of this
process it would hold the GIL against Raft, the scheduler and the HTTP API for as long. So
:meth:`~DumpSerializer.serialize` takes the store's snapshot (O(1), consistent with the tail data:
both at the last applied index) and forks: the child holds a copy-on-write image of this
process, encodes the snapshot on its own interpreter (another core when there is one), writes
``<dump>.nomadd.tmp``, fsyncs it and exits. :meth:`~DumpSerializer.check` (pysyncobj's
``serializeChecker``, polled on the tick thread) reaps the child and renames the file over the
dump, so pysyncobj deletes journal entries only once the new dump is durable. We never create
pysyncobj's own ``<dump>.tmp``: its rename then fails (caught inside pysyncobj) and cannot put a
partial file in place.

The child follows :mod:`nomadd.server.forked`'s rules (no lock, no logging, no GC, dies with
the server); a failure's traceback goes to ``<dump>.nomadd.tmp.err``, which the server logs. A
dump still running when the server stops is killed.

Dumps are paced. pysyncobj starts one whenever the log holds more than
``logCompactionMinEntries``; with a fixed floor a large store is dumped back to back, and each
dump costs O(state) of CPU. After each dump the floor becomes ``DUMP_PACE`` times the entries
applied while it was written, within ``entries`` (floor, ceiling): dumps then take about
1/DUMP_PACE of the time whatever the state size, and the ceiling bounds the log kept in memory.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import os
import pickle
import signal
import time
from typing import Any

from pysyncobj.config import SERIALIZER_STATE

from nomadd.server.forked import fork_worker
from nomadd.server.fsm import FSM
from nomadd.server.raft.journal import durable_replace, fsync_enabled
from nomadd.server.state.store import StateSnapshot, dump_snapshot

logger = logging.getLogger("nomadd.server.raft")

__all__ = ["DUMP_FORMAT", "DUMP_PACE", "DumpSerializer", "write_dump_file"]

DUMP_FORMAT = 1  # our full-dump file layout
DUMP_PACE = 10  # a dump waits for 10x the entries applied while the previous one was written


def _file_id(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns


def write_dump_file(path: str, snap: StateSnapshot, raft_data: Any) -> int:
    """Encode ``snap`` and pysyncobj's ``raft_data`` into ``path``, fsync'ed; returns its size
    before compression (the uncompressed pickle)."""
    blob = pickle.dumps((DUMP_FORMAT, dump_snapshot(snap), raft_data), protocol=4)
    with open(path, "wb") as f:
        with gzip.GzipFile(fileobj=f, mode="wb", compresslevel=1) as g:
            g.write(blob)
        f.flush()
        if fsync_enabled():
            os.fsync(f.fileno())
    return len(blob)


class DumpSerializer:
    """pysyncobj's custom full-dump hooks (see the module doc)."""

    def __init__(self, fsm: FSM, filename: str, entries: tuple[int, int] = (5000, 25_000)) -> None:
        self._fsm = fsm
        self._filename = filename
        self._entries = entries
        self.conf: Any = None  # the SyncObjConf whose logCompactionMinEntries is paced
        self._state = SERIALIZER_STATE.NOT_SERIALIZING
        self._pid = 0  # the writing child
        self._index = 0  # the snapshot's applied index
        self._started = 0.0
        self._base: tuple[int, int] | None = None  # the dump file our snapshot replaces

    @property
    def _tmp(self) -> str:
        return self._filename + ".nomadd.tmp"

    def serialize(self, filename: str, raft_data: Any) -> None:
        if self._state == SERIALIZER_STATE.SERIALIZING:
            return
        snap = self._fsm.store.snapshot()
        self._base = _file_id(self._filename)
        self._index = snap.index
        self._started = time.monotonic()
        tmp = self._tmp

        def on_error(why: str) -> None:
            with open(tmp + ".err", "w") as f:
                f.write(why)

        try:
            pid = fork_worker(lambda: write_dump_file(tmp, snap, raft_data), on_error)
        except OSError as err:
            logger.error("raft full dump cannot fork file=%s err=%s", self._filename, err)
            self._state = SERIALIZER_STATE.FAILED
            return
        self._pid = pid
        self._state = SERIALIZER_STATE.SERIALIZING

    def _reap(self) -> None:
        """Collect the child once it has exited; then the dump is in place (or it failed)."""
        pid, status = os.waitpid(self._pid, os.WNOHANG)
        if pid == 0:
            return
        self._pid = 0
        took = time.monotonic() - self._started
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            why = ""
            with contextlib.suppress(OSError):
                with open(self._tmp + ".err") as f:
                    why = f.read()[-2000:]
                os.unlink(self._tmp + ".err")
            logger.error(
                "raft full dump failed file=%s exit=%d took=%.3fs err=%s", self._filename, code, took, why
            )
            with contextlib.suppress(OSError):
                os.unlink(self._tmp)
            self._state = SERIALIZER_STATE.FAILED
            return
        if _file_id(self._filename) != self._base:
            # a snapshot from the leader was installed meanwhile: it is newer than ours
            os.unlink(self._tmp)
            logger.info("raft full dump superseded by a leader snapshot, discarded")
            self._state = SERIALIZER_STATE.FAILED
            return
        durable_replace(self._tmp, self._filename)  # before pysyncobj trims the journal
        next_at = self._pace(self._fsm.store.latest_index() - self._index)
        logger.info(
            "raft full dump written file=%s index=%d bytes=%d took=%.3fs next_after_entries=%d",
            self._filename,
            self._index,
            os.path.getsize(self._filename),
            took,
            next_at,
        )
        self._state = SERIALIZER_STATE.SUCCESS

    def _pace(self, applied_meanwhile: int) -> int:
        """Set the log size that starts the next dump (see the module doc); returns it."""
        floor, ceiling = self._entries
        next_at = max(floor, min(ceiling, applied_meanwhile * DUMP_PACE))
        if self.conf is not None:
            self.conf.logCompactionMinEntries = next_at  # read by pysyncobj at every check
        return next_at

    def check(self) -> int:
        """pysyncobj's ``serializeChecker``: SUCCESS/FAILED are reported once."""
        if self._pid:
            try:
                self._reap()
            except Exception:
                logger.exception("raft full dump failed file=%s", self._filename)
                self._pid = 0
                self._state = SERIALIZER_STATE.FAILED
        state = self._state
        if state in (SERIALIZER_STATE.SUCCESS, SERIALIZER_STATE.FAILED):
            self._state = SERIALIZER_STATE.NOT_SERIALIZING
        return int(state)

    def close(self) -> None:
        """Stop a dump still being written (the server is stopping): kill and reap the child."""
        pid, self._pid = self._pid, 0
        if pid:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            with contextlib.suppress(OSError):
                os.unlink(self._tmp)
            self._state = SERIALIZER_STATE.NOT_SERIALIZING

    def deserialize(self, filename: str) -> Any:
        with open(filename, "rb") as f, gzip.GzipFile(fileobj=f) as g:
            fmt, state, raft_data = pickle.loads(g.read())  # our own file or the leader's
        if fmt != DUMP_FORMAT:
            raise ValueError(f"unknown raft dump format {fmt!r}")
        self._fsm.restore(state)
        return raft_data
