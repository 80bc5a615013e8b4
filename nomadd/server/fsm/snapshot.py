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
from typing import Any

from nomadd.helper.snapshot_archive import SnapshotError, read_archive
from nomadd.server.state.store import Txn, decode_dump, register_table
from nomadd.structs.requests.snapshot import RestoreResult, SnapshotAbortEntry, SnapshotChunkEntry

__all__ = ["STAGING_TABLE", "apply_abort", "apply_chunk", "staged_restore"]

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


def apply_chunk(txn: Txn, entry: SnapshotChunkEntry) -> RestoreResult:
    if entry.total < 1 or not 0 <= entry.seq < entry.total:
        return _reject(entry, f"chunk {entry.seq} of {entry.total} is out of range")
    staged = txn.get(STAGING_TABLE, _META)
    if staged is not None and staged[0] == entry.restore_id and entry.seq < staged[3]:
        return RestoreResult()  # a chunk sent again (its first answer was lost): already staged
    done = txn.get(STAGING_TABLE, _DONE)
    if done is not None and done[0] == entry.restore_id:
        return RestoreResult(done=True, restored_index=int(done[1]), repeated=True)  # last chunk, again
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
        return RestoreResult()
    archive = b"".join(txn.get(STAGING_TABLE, _chunk_key(i)) or b"" for i in range(meta[1]))
    _clear(txn)
    digest = hashlib.sha256(archive).hexdigest()
    if digest != meta[2]:
        return _reject(entry, f"checksum mismatch, want {meta[2]}, got {digest}")
    try:
        snap_meta, state = read_archive(archive)
        _, tables = decode_dump(state)
    except SnapshotError as err:
        return RestoreResult(error=str(err))
    except Exception as err:  # same bytes, same failure on every server: a rejection, not a crash
        return _reject(entry, f"state cannot be decoded: {err!r}")
    tables.pop(STAGING_TABLE, None)
    txn.replace_all(tables)
    txn.put(STAGING_TABLE, _DONE, (entry.restore_id, snap_meta.index))
    return RestoreResult(done=True, restored_index=snap_meta.index)


def apply_abort(txn: Txn, entry: SnapshotAbortEntry) -> RestoreResult:
    staged = txn.get(STAGING_TABLE, _META)
    if staged is not None and (not entry.restore_id or staged[0] == entry.restore_id):
        _clear(txn)
    return RestoreResult()
