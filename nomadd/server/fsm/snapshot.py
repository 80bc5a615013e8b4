"""FSM cases of a snapshot restore: ``SNAPSHOT_RESTORE_CHUNK`` and ``SNAPSHOT_RESTORE_ABORT``.

An archive is larger than one Raft entry may be, so it arrives as numbered chunks. They are
staged in the ``snapshot_restore`` table of the replicated store itself (so a Raft dump taken
mid-restore, and a server restarted from it, hold the same staging as everyone else). Chunk 0
discards whatever was staged and starts a new restore; a chunk already staged (sent again after
its answer was lost, e.g. across a leader change) is accepted without change; a chunk of another
restore, or out of order, is rejected (returned, nothing changes). The last chunk joins the
staged chunks: the whole archive is checked (sha256 of the upload, then
:func:`read_archive_stream`: framing, format version, checksums) and its state, decoded in a
thread as the chunks were applied (:class:`SnapshotRestorer`), replaces every table in the same
entry; on a failed check the staging is dropped and the state is untouched. Every step depends
only on the entries, so every server ends in the same state.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import Any

from nomadd.helper.snapshot_archive import (
    ArchivePipe,
    Readable,
    SnapshotError,
    SnapshotMeta,
    read_archive_stream,
)
from nomadd.server.state import store_reuse
from nomadd.server.state.store import Txn, decode_dump, register_table
from nomadd.server.state.store_codec import decode_dump_stream, dump_reader, dump_streams
from nomadd.server.state.store_reuse import reusing
from nomadd.structs.requests.snapshot import RestoreResult, SnapshotAbortEntry, SnapshotChunkEntry

__all__ = [
    "STAGING_TABLE",
    "SnapshotRestorer",
    "read_at",
    "restore_staged",
    "restored_at",
    "staged_restore",
    "write_at",
]

logger = logging.getLogger(__name__)

STAGING_TABLE = "snapshot_restore"
_META = "meta"  # (restore_id, total, sha256, next_seq, last chunk's sent_at_ns)
_DONE = "done"  # (restore_id, restored index) of the last completed restore: answers a resent last chunk


def write_at(fd: int, data: bytes, offset: int) -> None:
    """All of ``data`` written to ``fd`` at ``offset`` (``pwrite`` may write less)."""
    view = memoryview(data)
    while view:
        view = view[os.pwrite(fd, view, offset + len(data) - len(view)) :]


def read_at(fd: int, size: int, offset: int) -> bytes:
    """``size`` bytes of ``fd`` from ``offset`` (OSError if the file ends first)."""
    parts: list[bytes] = []
    while size > 0:
        part = os.pread(fd, size, offset)
        if not part:
            raise OSError(f"spool file: {size} bytes missing at {offset}")
        parts.append(part)
        size, offset = size - len(part), offset + len(part)
    return b"".join(parts)


class _Spool:
    """One restore's staged chunks on disk: an unlinked file, gone when the last
    :class:`SpooledChunk` of it is dropped (a forked Raft dump reads its own copy of the fd).
    Held in memory, the chunks cost every server the archive's size (263 MB at a million
    allocations) on top of the old and the new state."""

    __slots__ = ("_fd", "size")

    def __init__(self, directory: str | None) -> None:
        fd, path = tempfile.mkstemp(prefix="nomadd-restore-", suffix=".spool", dir=directory)
        os.unlink(path)
        self._fd, self.size = fd, 0

    def append(self, data: bytes) -> SpooledChunk:
        offset = self.size
        write_at(self._fd, data, offset)
        self.size += len(data)
        return SpooledChunk(self, offset, len(data))

    def read(self, offset: int, length: int) -> bytes:
        return read_at(self._fd, length, offset)

    def __del__(self) -> None:
        os.close(self._fd)


class SpooledChunk:
    """A staged chunk's bytes, kept in a :class:`_Spool`: equal to its bytes, and dumped as them."""

    __slots__ = ("_length", "_offset", "_spool")

    def __init__(self, spool: _Spool, offset: int, length: int) -> None:
        self._spool, self._offset, self._length = spool, offset, length

    def read(self) -> bytes:
        return self._spool.read(self._offset, self._length)

    def __len__(self) -> int:
        return self._length

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (bytes, SpooledChunk)):
            return self.read() == _chunk_bytes(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


def _chunk_bytes(value: Any) -> bytes:
    """A staged chunk's bytes (spooled, or held: loaded from a dump taken mid-restore)."""
    return value.read() if isinstance(value, SpooledChunk) else bytes(value or b"")


def _encode(value: Any) -> Any:
    if isinstance(value, SpooledChunk):
        return value.read()
    return list(value) if isinstance(value, tuple) else value


def _decode(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


register_table(STAGING_TABLE, _encode, _decode)


def _chunk_key(seq: int) -> str:
    return f"chunk/{seq:08d}"


def _clear(txn: Txn) -> None:
    for key in list(txn.table(STAGING_TABLE)):
        txn.delete(STAGING_TABLE, key)


def staged_restore(rows: Any) -> tuple[str, int]:
    """The restore id staged in ``rows`` (a table mapping) and when its last chunk was sent
    (unix ns), or ``("", 0)``."""
    meta = rows.get(_META)
    return (str(meta[0]), int(meta[4])) if meta else ("", 0)


def restore_staged(store: Any) -> bool:
    """True while ``store`` (a :class:`~nomadd.server.state.store.StateStore`) stages a restore's
    chunks: from its first chunk until its last is applied or it is aborted. The Raft log is
    quiet then while the leader waits for its own decoder before the last chunk, but a quiet
    server's full dump (``raft/dump.py``) would take CPU from the three decoders: at a million
    allocations those dumps (one forked encoder per server, ~20 s of CPU each) ran beside them."""
    return store.get(STAGING_TABLE, _META) is not None


def restored_at(store: Any) -> int:
    """The Raft index at which ``store``'s last restore was applied (0: none, or one is staging)."""
    if store.get(STAGING_TABLE, _META) is not None or store.get(STAGING_TABLE, _DONE) is None:
        return 0
    return int(store.table_index(STAGING_TABLE))


def _reject(entry: SnapshotChunkEntry, why: str) -> RestoreResult:
    return RestoreResult(error=f"snapshot restore {entry.restore_id}: {why}")


Decoded = tuple[SnapshotMeta, dict[str, Mapping[str, Any]]]

DECODER_IDLE_S = 300.0  # a decoder given no chunk for this long stops (its upload was abandoned)
# A follower's decoder runs this much nicer than the server (its thread only): the restore is
# done, for the operator, when the leader has applied it, and on a machine the servers share
# (three decoders, two cores at C1M) equal shares made the leader wait for a third of them.
FOLLOWER_DECODE_NICE = 10
FREE_BATCH_ROWS = 2000  # rows of a replaced state freed at a time (the GIL passes in between)
TRIM_EVERY_BYTES = 32 << 20  # of an archive decoded between two trims of the C heap
_PEEK_BYTES = 64  # enough for a dump's first key and version


def _decode_state(f: Readable) -> dict[str, Mapping[str, Any]]:
    """The tables of the state dump read from ``f``, row by row as it arrives (a version 1
    dump, one msgpack document, is read whole first)."""
    head = f.read(_PEEK_BYTES)
    if not dump_streams(head):  # version 1, or not a dump: decode_dump says why
        return decode_dump(head + f.read())[1]
    return decode_dump_stream(dump_reader(_Prefixed(head, f)))[1]


class _Prefixed:
    """``rest`` with ``head`` (already read from it) put back in front."""

    __slots__ = ("_head", "_rest")

    def __init__(self, head: bytes, rest: Readable) -> None:
        self._head, self._rest = head, rest

    def read(self, size: int = -1, /) -> bytes:
        if not self._head:
            return self._rest.read(size)
        head, self._head = self._head, b""
        return head


class _Trimmed:
    """``f`` read with the C heap trimmed (:func:`_trim_heap`) first and after every
    ``TRIM_EVERY_BYTES`` of it: free space in a server's C heap (left by a journal replay, a
    snapshot send, an earlier upload) is not reused by the state a restore builds, which comes
    from Python's own arenas, and would otherwise stay under the restore's peak."""

    __slots__ = ("_f", "_next", "_read", "_trim")

    def __init__(self, f: Readable, trim: Callable[[], None] | None = None) -> None:
        self._f, self._read, self._next = f, 0, 0
        self._trim = trim or _trim_heap

    def read(self, size: int = -1, /) -> bytes:
        if self._read >= self._next:
            self._trim()
            self._next = self._read + TRIM_EVERY_BYTES
        data = self._f.read(size)
        self._read += len(data)
        return data


class _Decoder:
    """One restore's archive, checked and decoded in a thread as its chunks are applied
    (:func:`read_archive_stream` reading an :class:`ArchivePipe` the apply path feeds), so the
    last chunk finds it decoded. Also hashes what it was fed (the upload's sha256). It decodes
    against ``live``, the running state when it started (store_reuse): what the archive holds
    equal to it is kept as the running state's objects, not held twice until the swap."""

    def __init__(
        self,
        key: tuple[str, str],
        idle_s: float,
        live: Mapping[str, Mapping[str, Any]] | None = None,
        nice: int = 0,
    ) -> None:
        self.key = key  # (restore_id, sha256 of the upload)
        self._live = live
        self._nice = nice
        self.next_seq = 0
        self.digest = hashlib.sha256()
        self.pipe = ArchivePipe(idle_s)
        self.result: Future[Decoded] = Future()
        self.thread = threading.Thread(target=self._run, name="snapshot-restore-decode", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        t0, cpu0 = time.monotonic(), time.thread_time()
        if self._nice:
            _renice_thread(self._nice)
        try:
            with reusing(self._live):
                meta, tables = read_archive_stream(_Trimmed(self.pipe), _decode_state)
                kept, built = store_reuse.counts()
            assert tables is not None
            _trim_heap()  # the peak is near: old and new state alive, the upload's buffers freed
            self.result.set_result((meta, tables))
            logger.info(
                "snapshot restore decoded restore_id=%s took_s=%.2f cpu_s=%.2f kept=%d built=%d nice=%d",
                self.key[0],
                time.monotonic() - t0,
                time.thread_time() - cpu0,
                kept,
                built,
                self._nice,
            )
        except BaseException as err:  # reported by the last chunk (PipeStopped: never asked for)
            self.result.set_exception(err)
        finally:
            self._live = None  # the running state's tables: not held past the swap
            self.pipe.finish()

    def feed(self, seq: int, data: bytes) -> bool:
        """Chunk ``seq``; False (nothing fed) if it is not the next one or the decoder stopped."""
        if seq != self.next_seq or not self.pipe.feed(data):
            return False
        self.digest.update(data)
        self.next_seq += 1
        return True


def _renice_thread(increment: int) -> None:
    """Make the calling thread ``increment`` nicer (Linux: a thread's own priority; an
    unprivileged process cannot take it back, nor needs to: the thread ends with its restore)."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + increment))
    except OSError as err:
        logger.debug("snapshot restore decoder keeps its priority err=%s", err)


def _free(tables: dict[str, Mapping[str, Any]]) -> None:
    """Drop a replaced state, a batch of rows at a time: freeing a million objects at once
    would hold the GIL (and, on the apply thread, the store lock) for seconds."""
    while tables:
        _, rows = tables.popitem()
        values = list(rows.values())
        del rows  # the table's own nodes and keys; the rows stay alive in ``values``
        while values:
            del values[-FREE_BATCH_ROWS:]
            time.sleep(0)  # let the Raft and loop threads run between batches
    _trim_heap()


def _trim_heap() -> None:
    """Give the C heap's free pages back to the system (glibc's ``malloc_trim``; nothing
    elsewhere). A restore moves the archive through many ~1 MiB buffers (the upload, Raft
    messages, chunks, the inflater's) and frees a state's large blocks; glibc raises its mmap
    threshold after the first such block is freed, so later ones come from the heap, and freed
    they stay in the process's RSS (a reused heap, never returned) unless trimmed."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return
    trim(0)  # ctypes lets the GIL go for the call


class SnapshotRestorer:
    """One FSM's apply functions for the restore entries, with the archive decoded as it arrives.

    Decoding a large archive (100,000 allocations) takes many seconds, and an apply runs on the
    Raft thread: done inside the last entry it would stop heartbeats on every server at once.
    So every chunk applied is also fed to a :class:`_Decoder` whose thread checks and decodes
    the archive as it streams in; the last entry takes the result, swaps the tables (one step)
    and hands the replaced state to a thread that frees it. A server whose decoder has not
    decoded the chunks before the last one yet holds that entry's apply (:meth:`waits`, through
    ``FSM.holds``): its Raft thread goes on answering the leader meanwhile, where blocked in the
    apply it fell silent for as long as its decoder lagged (and a leader that heard from neither
    follower stepped down). A follower's decoder runs :data:`FOLLOWER_DECODE_NICE` nicer
    (``leading``, set by the server: whether it leads now), so the leader's, which the operator
    waits for, finishes first. A server that has no decoder at the
    right chunk (restarted mid-restore, caught up from a Raft dump, its decoder idle too long)
    starts one on the chunks staged so far. The result depends only on the staged bytes, so
    every server ends in the same state. Uploads end with an empty last chunk, so the leader
    can wait (:meth:`wait_decoded`) for its decoder before the last one is proposed.
    """

    def __init__(self, idle_s: float = DECODER_IDLE_S, spool_dir: str | None = None) -> None:
        self._lock = threading.Lock()
        self._decoder: _Decoder | None = None  # one restore at a time
        self._idle_s = idle_s
        self._spool_dir = spool_dir  # where staged chunks are spooled (None: the system's temp dir)
        self._spool: tuple[str, _Spool] | None = None  # (restore_id, its spool): apply thread only
        self.leading: Callable[[], bool] | None = None  # whether this server leads (None: as a leader)

    def _staged(self, restore_id: str, data: bytes) -> SpooledChunk | bytes:
        """What the staging table holds for chunk ``data``: a reference to it in this restore's
        spool file, or the bytes themselves if the file cannot be written (the same content
        either way, so every server still holds the same state)."""
        if not data:
            return data
        try:
            if self._spool is None or self._spool[0] != restore_id:
                self._spool = (restore_id, _Spool(self._spool_dir))
            return self._spool[1].append(data)
        except OSError as err:
            logger.warning("snapshot restore chunk kept in memory, not spooled err=%s", err)
            self._spool = None
            return data

    def wait_decoded(self, restore_id: str, sha256: str, timeout: float) -> bool:
        """Wait until this server's decoder of the restore has decoded every chunk applied so
        far (False: no such decoder, or ``timeout`` passed). Blocking: call from a thread."""
        with self._lock:
            decoder = self._decoder
        if decoder is None or decoder.key != (restore_id, sha256):
            return False
        return decoder.pipe.wait_drained(timeout)

    def decoding(self) -> bool:
        """Whether a decoder has chunks fed to it that it has not decoded yet (cheap)."""
        decoder = self._decoder
        return decoder is not None and not decoder.pipe.drained()

    def waits(self, entry: SnapshotChunkEntry) -> bool:
        """Whether applying ``entry`` now would wait for this server's decoder: it is the last
        chunk of the restore being decoded, and the chunks before it are not decoded yet."""
        decoder = self._decoder
        return (
            decoder is not None
            and entry.seq == entry.total - 1
            and decoder.key == (entry.restore_id, entry.sha256)
            and decoder.next_seq == entry.seq
            and not decoder.pipe.drained()
        )

    def _drop(self) -> None:
        with self._lock:
            decoder, self._decoder = self._decoder, None
        if decoder is not None:
            decoder.pipe.cancel()

    def _feed(self, txn: Txn, key: tuple[str, str], seq: int, data: bytes) -> _Decoder:
        """The decoder of restore ``key``, fed through chunk ``seq`` (``data``, already staged)."""
        with self._lock:
            decoder = self._decoder
        if decoder is not None and decoder.key == key and decoder.feed(seq, data):
            return decoder
        self._drop()
        nice = FOLLOWER_DECODE_NICE if self.leading is not None and not self.leading() else 0
        # the running state to decode against, without the staging table: the archive holds
        # none of it, and its rows would keep an aborted restore's spool file open until the
        # decoder's thread ends
        live = {name: rows for name, rows in txn.tables().items() if name != STAGING_TABLE}
        decoder = _Decoder(key, self._idle_s, live, nice)
        for i in range(seq + 1):
            decoder.feed(i, _chunk_bytes(txn.get(STAGING_TABLE, _chunk_key(i))))
        with self._lock:
            self._decoder = decoder
        return decoder

    def apply_chunk(self, txn: Txn, entry: SnapshotChunkEntry) -> RestoreResult:
        if entry.total < 1 or not 0 <= entry.seq < entry.total:
            return _reject(entry, f"chunk {entry.seq} of {entry.total} is out of range")
        staged = txn.get(STAGING_TABLE, _META)
        if staged is not None and staged[0] == entry.restore_id and entry.seq < staged[3]:
            return RestoreResult()  # a chunk sent again (its first answer was lost): already staged
        done = txn.get(STAGING_TABLE, _DONE)
        if done is not None and done[0] == entry.restore_id:
            return RestoreResult(done=True, restored_index=int(done[1]), repeated=True)
        if entry.seq == 0:
            _clear(txn)
            self._drop()
            self._spool = None
            meta: tuple[Any, ...] = (entry.restore_id, entry.total, entry.sha256, 0, entry.sent_at_ns)
        elif staged is None or staged[0] != entry.restore_id:
            return _reject(entry, "is not in progress (aborted or replaced)")
        elif entry.seq != staged[3]:
            return _reject(entry, f"chunk {entry.seq} out of order, want {staged[3]}")
        else:
            meta = tuple(staged)
        txn.put(STAGING_TABLE, _chunk_key(entry.seq), self._staged(entry.restore_id, entry.data))
        meta = (meta[0], meta[1], meta[2], entry.seq + 1, entry.sent_at_ns)
        decoder = self._feed(txn, (entry.restore_id, meta[2]), entry.seq, entry.data)
        if meta[3] < meta[1]:
            txn.put(STAGING_TABLE, _META, meta)
            return RestoreResult()
        _clear(txn)
        self._spool = None  # its file goes once no snapshot holds a staged row any more
        decoder.pipe.close()
        with self._lock:
            self._decoder = None
        digest = decoder.digest.hexdigest()
        if digest != meta[2]:
            decoder.pipe.cancel()
            return _reject(entry, f"checksum mismatch, want {meta[2]}, got {digest}")
        try:
            snap_meta, tables = decoder.result.result()  # at once, unless this server lags behind
        except SnapshotError as err:
            return RestoreResult(error=str(err))
        except Exception as err:  # same bytes, same failure on every server: a rejection, not a crash
            return _reject(entry, f"state cannot be decoded: {err!r}")
        tables.pop(STAGING_TABLE, None)
        old = txn.replace_all(tables)
        threading.Thread(target=_free, args=(old,), name="snapshot-restore-free", daemon=True).start()
        txn.put(STAGING_TABLE, _DONE, (entry.restore_id, snap_meta.index))
        return RestoreResult(done=True, restored_index=snap_meta.index)

    def apply_abort(self, txn: Txn, entry: SnapshotAbortEntry) -> RestoreResult:
        staged = txn.get(STAGING_TABLE, _META)
        if staged is not None and (not entry.restore_id or staged[0] == entry.restore_id):
            _clear(txn)
            self._drop()
            self._spool = None
        return RestoreResult()
