"""``Operator.Snapshot*`` RPCs and the snapshot-restore entries of the Raft log.

A restore travels as numbered chunks of the archive (each far below the Raft entry limit):
``SNAPSHOT_RESTORE_CHUNK`` entries stage them in the replicated store, the last one checks the
whole archive and swaps the state on every server in the same entry (server/fsm/snapshot.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from nomadd.structs.requests import Envelope, Method, QueryMeta, WriteMeta

__all__ = [
    "OPERATOR_SNAPSHOT_RESTORE_CHUNK",
    "OPERATOR_SNAPSHOT_SAVE",
    "RestoreResult",
    "SnapshotAbortEntry",
    "SnapshotChunkEntry",
    "SnapshotRestoreChunkReply",
    "SnapshotRestoreChunkRequest",
    "SnapshotSaveReply",
    "SnapshotSaveRequest",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class SnapshotSaveRequest(Envelope):
    """Take a point-in-time archive of the state (on the leader unless ``allow_stale``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SnapshotSaveReply:
    meta: QueryMeta
    archive: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class SnapshotRestoreChunkRequest(Envelope):
    """Chunk ``seq`` of ``total`` of the archive of restore ``restore_id``.

    ``sha256`` is of the whole archive; the last chunk restores once the staged archive
    matches it.
    """

    restore_id: str
    seq: int
    total: int
    sha256: str
    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class SnapshotRestoreChunkReply:
    meta: WriteMeta
    done: bool = False  # the last chunk: the state was replaced at meta.index
    restored_index: int = 0  # the Raft index recorded in the archive


# ---- Raft entries ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SnapshotChunkEntry:
    """``SNAPSHOT_RESTORE_CHUNK``: chunk 0 discards any staging and starts ``restore_id``."""

    restore_id: str
    seq: int
    total: int
    sha256: str
    data: bytes
    sent_at_ns: int = 0  # made by the endpoint: lets a leader drop an upload abandoned midway


@dataclass(frozen=True, slots=True, kw_only=True)
class SnapshotAbortEntry:
    """``SNAPSHOT_RESTORE_ABORT``: drop the staging of ``restore_id`` ("" = whatever is staged)."""

    restore_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RestoreResult:
    """What a chunk entry did: ``error`` is a rule rejection (nothing changed)."""

    error: str = ""
    done: bool = False
    restored_index: int = 0
    repeated: bool = False  # the last chunk sent again: the restore was done by its first copy


OPERATOR_SNAPSHOT_SAVE = Method("Operator.SnapshotSave", SnapshotSaveRequest, SnapshotSaveReply)
OPERATOR_SNAPSHOT_RESTORE_CHUNK = Method(
    "Operator.SnapshotRestoreChunk", SnapshotRestoreChunkRequest, SnapshotRestoreChunkReply
)
