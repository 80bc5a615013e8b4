"""FSM cases of a snapshot restore: ``SNAPSHOT_RESTORE_CHUNK`` and ``SNAPSHOT_RESTORE_ABORT``.

An archive is larger than one Raft entry may be, so it arrives as numbered chunks. They are
staged in the ``snapshot_restore`` table of the replicated store itself (so a Raft dump taken
mid-restore, and a server restarted from it, hold the same staging as everyone else). Chunk 0
discards whatever was staged and starts a new restore; a chunk already staged (sent again after
its answer was lost, e.g. across a leader change) is accepted without change; a chunk of another
restore, or out of order, is rejected (returned, nothing changes). The last chunk joins the
staged chunks, checks the whole archive (sha256 of the upload, then :func:`read_archive`:
format version, checksums), decodes the state, and replaces every table in the same entry; on a
failed check the staging is dropped and the state is untouched. Every step depends only on the
entries, so every server ends in the same state.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from concurrent.futures import Future
from typing import Any

from nomadd.helper.snapshot_archive import SnapshotError, SnapshotMeta, read_archive
from nomadd.server.state.store import Txn, decode_dump, register_table
from nomadd.structs.requests.snapshot import RestoreResult, SnapshotAbortEntry, SnapshotChunkEntry

__all__ = ["STAGING_TABLE", "SnapshotRestorer", "staged_restore"]

STAGING_TABLE = "snapshot_restore"
_META = "meta"  # (restore_id, total, sha256, next_seq, last chunk's sent_at_ns)
_DONE = "done"  # (restore_id, restored index) of the last completed restore: answers a resent last chunk


def _encode(value: Any) -> Any:
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


def _reject(entry: SnapshotChunkEntry, why: str) -> RestoreResult:
    return RestoreResult(error=f"snapshot restore {entry.restore_id}: {why}")


Decoded = tuple[SnapshotMeta, dict[str, Mapping[str, Any]]]


def _decode_archive(archive: bytes) -> Decoded:
    snap_meta, state = read_archive(archive)
    _, tables = decode_dump(state)
    return snap_meta, tables


class SnapshotRestorer:
    """One FSM's apply functions for the restore entries, with the archive decoded ahead.

    Decoding a large archive (100,000 allocations) takes many seconds, and an apply runs on the
    Raft thread: done inside the last entry it would stop heartbeats on every server at once.
    So when every chunk but the last is staged, this server starts decoding the staged bytes in
    a background thread (:meth:`prepared` is that future; the leader's endpoint waits for it
    before the uploader sends the last chunk), and the last entry takes the result. The result
    is the same whether it was prepared or is decoded inline (same bytes), so every server still
    ends in the same state. Uploads end with an empty last chunk, so the prepared bytes are the
    whole archive.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._futures: dict[tuple[str, str], Future[Decoded]] = {}

    def prepared(self, restore_id: str, sha256: str) -> Future[Decoded] | None:
        with self._lock:
            return self._futures.get((restore_id, sha256))

    def _start(self, restore_id: str, sha256: str, archive: bytes) -> None:
        fut: Future[Decoded] = Future()
        with self._lock:
            self._futures = {(restore_id, sha256): fut}  # one restore at a time

        def run() -> None:
            try:
                fut.set_result(_decode_archive(archive))
            except BaseException as err:  # reported by the last entry, as an inline decode would
                fut.set_exception(err)

        threading.Thread(target=run, name="snapshot-restore-decode", daemon=True).start()

    def _take(self, restore_id: str, sha256: str) -> Future[Decoded] | None:
        with self._lock:
            return self._futures.pop((restore_id, sha256), None)

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
            meta: tuple[Any, ...] = (entry.restore_id, entry.total, entry.sha256, 0, entry.sent_at_ns)
        elif staged is None or staged[0] != entry.restore_id:
            return _reject(entry, "is not in progress (aborted or replaced)")
        elif entry.seq != staged[3]:
            return _reject(entry, f"chunk {entry.seq} out of order, want {staged[3]}")
        else:
            meta = tuple(staged)
        txn.put(STAGING_TABLE, _chunk_key(entry.seq), entry.data)
        meta = (meta[0], meta[1], meta[2], entry.seq + 1, entry.sent_at_ns)
        if meta[3] < meta[1]:
            txn.put(STAGING_TABLE, _META, meta)
            if meta[3] == meta[1] - 1 and meta[1] > 1:  # all but the (empty) last chunk: decode ahead
                self._start(entry.restore_id, meta[2], _join(txn, meta[3]))
            return RestoreResult()
        archive = _join(txn, meta[1])
        _clear(txn)
        digest = hashlib.sha256(archive).hexdigest()
        ahead = self._take(entry.restore_id, meta[2])
        if digest != meta[2]:
            return _reject(entry, f"checksum mismatch, want {meta[2]}, got {digest}")
        try:
            # the prepared bytes are the archive only when this last chunk is empty
            snap_meta, tables = ahead.result() if ahead and not entry.data else _decode_archive(archive)
        except SnapshotError as err:
            return RestoreResult(error=str(err))
        except Exception as err:  # same bytes, same failure on every server: a rejection, not a crash
            return _reject(entry, f"state cannot be decoded: {err!r}")
        tables.pop(STAGING_TABLE, None)
        txn.replace_all(tables)
        txn.put(STAGING_TABLE, _DONE, (entry.restore_id, snap_meta.index))
        return RestoreResult(done=True, restored_index=snap_meta.index)

    def apply_abort(self, txn: Txn, entry: SnapshotAbortEntry) -> RestoreResult:
        staged = txn.get(STAGING_TABLE, _META)
        if staged is not None and (not entry.restore_id or staged[0] == entry.restore_id):
            _clear(txn)
            self._take(str(staged[0]), str(staged[2]))
        return RestoreResult()


def _join(txn: Txn, count: int) -> bytes:
    return b"".join(txn.get(STAGING_TABLE, _chunk_key(i)) or b"" for i in range(count))
