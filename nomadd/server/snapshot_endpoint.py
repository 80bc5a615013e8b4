"""``Operator.SnapshotSave`` and ``Operator.SnapshotRestoreChunk`` (Nomad's ``Operator.SnapshotSave``
/ ``SnapshotRestore``, whose archive we carry in chunks: an archive outgrows one Raft entry).

Save: the store's member of this server's Raft full dump at the applied index or later
(:meth:`nomadd.server.raft.Raft.dump_for_save` starts one, or waits for the one in progress),
copied into the archive as it is (:func:`~nomadd.helper.snapshot_writer.write_archive_from_member`):
a server that dumps anyway (after a busy spell, the leader for a follower's catch-up) does not
encode the same state twice at once. Without such a dump (no data dir, a restore staged, a dump
failed or not had in ``DUMP_WAIT_S``): a copy-on-write snapshot of the store (consistent at its
applied index, O(1) under the lock), encoded and archived by a forked child
(:mod:`nomadd.helper.snapshot_archive`).

Restore: the HTTP edge checks the whole archive first (nothing is proposed for a bad one), then
sends it as ``SNAPSHOT_RESTORE_CHUNK`` entries (:mod:`nomadd.server.fsm.snapshot`: every server
decodes the archive in a thread as the chunks are applied); the last one swaps the state on
every server. The leader then re-runs its leadership sequence (barrier,
components re-enabled) so the broker, heartbeats and GC start from the restored state.

:class:`RestoreJanitor` (leader component) drops a restore whose uploader stopped sending
(``SNAPSHOT_RESTORE_ABORT``). A leader change does not: under load elections happen during a
long upload, and the uploader carries on with the new leader (a chunk sent twice is accepted once).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import BinaryIO

from nomadd.helper.snapshot_writer import WrittenArchive, write_archive_from_member, write_archive_into
from nomadd.rpc import RPCClient, RPCRegistry
from nomadd.server.context import ServerContext
from nomadd.server.forked import run_forked
from nomadd.server.fsm.snapshot import STAGING_TABLE, SnapshotRestorer, staged_restore
from nomadd.server.periodic import PeriodicLeaderTask
from nomadd.server.state.store import StateSnapshot
from nomadd.server.state.store_codec import write_dump
from nomadd.structs.errors import NoLeaderError, NomaddError, ValidationError
from nomadd.structs.messages import MessageType
from nomadd.structs.requests import QueryMeta, WriteMeta
from nomadd.structs.requests.snapshot import (
    OPERATOR_SNAPSHOT_RESTORE_CHUNK,
    OPERATOR_SNAPSHOT_SAVE,
    RestoreResult,
    SnapshotAbortEntry,
    SnapshotChunkEntry,
    SnapshotRestoreChunkReply,
    SnapshotRestoreChunkRequest,
    SnapshotSaveReply,
    SnapshotSaveRequest,
)

logger = logging.getLogger(__name__)

__all__ = [
    "CHUNK_BYTES",
    "RestoreJanitor",
    "SavedArchive",
    "SnapshotEndpoint",
    "take_archive",
    "take_archive_file",
]

# per Raft entry: below MAX_ENTRY_BYTES, cheap for heartbeats. 3 MiB was tried at a million
# allocations: the restore 51.5 -> 49.6 s (its cost is per byte, not per chunk), but the leader's
# tick thread then stalled 0.5 s per chunk (pysyncobj compresses and encrypts it per follower)
CHUNK_BYTES = 1024 * 1024
SAVE_TIMEOUT_S = 600.0  # a follower waits this long for the leader's archive
RESTORE_IDLE_S = 120.0  # a restore with no chunk for this long was abandoned by its uploader
JANITOR_INTERVAL_S = 10.0
DECODE_WAIT_S = 600.0  # the leader's wait for its decoder before the last chunk (then that entry waits)
# The save's forked child runs at the server's own priority, not forked.CHILD_NICE's: an operator
# waits for it, and on an idle cluster what it competes with is the servers' Raft dump children
# (CHILD_NICE: at equal niceness, after a C1M restart two of them took half of its CPU). Its
# encoder and compressing thread still share the cores fairly with the servers' own threads.
SAVE_CHILD_NICE = 0
# a save waits this long for a Raft full dump at its index, then encodes the store itself: a
# dump of a million allocations takes ~20 s alone; one in progress is waited for first
DUMP_WAIT_S = 60.0


def _without_staging(snap: StateSnapshot) -> StateSnapshot:
    if not snap.table(STAGING_TABLE):
        return snap
    tables = {n: snap.table(n) for n in snap._tables if n != STAGING_TABLE}
    return StateSnapshot(tables, dict(snap._indexes), snap.index)


def _unnamed_file(dirs: tuple[str, ...]) -> int:
    """An fd of a new file no name points to (gone when closed), in the first of ``dirs`` that
    takes one: ``O_TMPFILE``, or a temporary file unlinked at once. Made before the fork: the
    child writes the archive into it, this process then reads it."""
    err: OSError | None = None
    for d in dirs:
        try:
            return os.open(d, os.O_TMPFILE | os.O_RDWR, 0o600)
        except OSError as e:  # no such dir, or a filesystem without unnamed files
            err = e
        try:
            fd, path = tempfile.mkstemp(prefix=".nomadd-snapshot-", suffix=".tmp", dir=d)
            os.unlink(path)
            return fd
        except OSError as e:
            err = e
    raise err or OSError("no directory for the snapshot's archive")


def _write_state_archive(snap: StateSnapshot, term: int, fd: int) -> WrittenArchive:
    """The archive of ``snap`` written into the empty file ``fd`` in one pass
    (:mod:`nomadd.helper.snapshot_writer`): the dump is compressed as it is encoded, never held
    or written out whole (a gigabyte at a million allocations)."""
    return write_archive_into(
        fd, lambda sink: write_dump(_without_staging(snap), sink), index=snap.index, term=term
    )


def _term(ctx: ServerContext) -> int:
    try:
        return int(ctx.raft.stats().get("term") or 0)
    except (TypeError, ValueError):
        return 0


@dataclasses.dataclass(frozen=True, slots=True)
class SavedArchive:
    """An archive in a file no name points to (gone once closed), read from its start."""

    file: BinaryIO
    size: int
    sha256: str  # of the archive (hex)
    index: int  # the Raft index of the state it holds

    def close(self) -> None:
        self.file.close()


async def _archive_from_dump(ctx: ServerContext, index: int, term: int, fd: int) -> SavedArchive | None:
    """The archive of this server's Raft full dump at ``index`` or later, written into the empty
    file ``fd``; None (``fd`` left empty) when there is none to copy."""
    dumped = await ctx.raft.dump_for_save(index, DUMP_WAIT_S)
    if dumped is None or STAGING_TABLE in dumped.tables:
        return None

    def copy() -> WrittenArchive | None:
        with open(dumped.path, "rb") as src:
            st = os.fstat(src.fileno())
            if (st.st_ino, st.st_mtime_ns) != dumped.file_id:
                return None  # replaced since (a newer dump, a leader's snapshot)
            return write_archive_from_member(
                fd,
                src.fileno(),
                dumped.offset,
                dumped.length,
                state_size=dumped.size,
                state_sha256=dumped.sha256,
                index=dumped.index,
                term=term,
            )

    try:
        written = await asyncio.to_thread(copy)
    except OSError as err:
        logger.warning("snapshot not taken from the raft dump err=%s", err)
        written = None
    if written is None:
        os.ftruncate(fd, 0)
        return None
    file = os.fdopen(fd, "rb")
    return SavedArchive(file=file, size=written.size, sha256=written.sha256, index=dumped.index)


async def take_archive_file(ctx: ServerContext) -> SavedArchive:
    """An archive of this server's state now, in a file no name points to (in the data dir, or
    the temp dir): the caller streams it and closes it."""
    snap = ctx.store.snapshot()
    term = _term(ctx)
    t0 = time.monotonic()
    fd = _unnamed_file(tuple(d for d in (ctx.config.data_dir, tempfile.gettempdir()) if d))
    try:
        from_dump = await _archive_from_dump(ctx, snap.index, term, fd)
    except BaseException:
        os.close(fd)
        raise
    if from_dump is not None:
        logger.info(
            "snapshot taken from the raft dump index=%d term=%d bytes=%d took=%.3fs",
            from_dump.index,
            term,
            from_dump.size,
            time.monotonic() - t0,
        )
        return from_dump
    try:

        def build() -> bytes:
            w = _write_state_archive(snap, term, fd)
            return f"{w.size} {w.sha256} {w.state_size}".encode()

        # encoded by a forked child (nomadd/server/forked.py): a million allocations are seconds of
        # Python that, in a thread, would hold the GIL against Raft heartbeats and the API; it
        # writes the archive into the file this process then reads (only a line comes back)
        size, sha256, state_size = (await run_forked(build, nice=SAVE_CHILD_NICE)).decode().split()
        saved = SavedArchive(file=os.fdopen(fd, "rb"), size=int(size), sha256=sha256, index=snap.index)
    except BaseException:
        os.close(fd)
        raise
    logger.info(
        "snapshot taken index=%d term=%d bytes=%d state_bytes=%s took=%.3fs",
        snap.index,
        term,
        saved.size,
        state_size,
        time.monotonic() - t0,
    )
    return saved


async def take_archive(ctx: ServerContext) -> tuple[bytes, int]:
    """An archive of this server's state now (whole, in memory), and the Raft index it is at."""
    saved = await take_archive_file(ctx)
    try:
        return await asyncio.to_thread(saved.file.read), saved.index
    finally:
        saved.close()


class SnapshotEndpoint:
    def __init__(
        self,
        ctx: ServerContext,
        on_restored: Callable[[], None] | None = None,
        restorer: SnapshotRestorer | None = None,
    ) -> None:
        self._ctx = ctx
        self._on_restored = on_restored
        self._restorer = restorer
        self._leader_http: Callable[[], Awaitable[str]] | None = None
        self._rpc: RPCClient | None = None

    def forward_saves(self, leader_http: Callable[[], Awaitable[str]], rpc: RPCClient) -> None:
        """Forward a save to the leader itself, with :data:`SAVE_TIMEOUT_S`: archiving a large
        state takes longer than the dispatcher's forwarding timeout."""
        self._leader_http, self._rpc = leader_http, rpc

    def register(self, registry: RPCRegistry) -> None:
        # "local": a follower forwards saves itself (see forward_saves); reads are on the leader
        registry.register(OPERATOR_SNAPSHOT_SAVE, self.save, kind="local")
        registry.register(OPERATOR_SNAPSHOT_RESTORE_CHUNK, self.restore_chunk, kind="write")

    async def save(self, req: SnapshotSaveRequest) -> SnapshotSaveReply:
        if not req.allow_stale and not self._ctx.raft.is_leader():
            if req.forwarded or self._leader_http is None or self._rpc is None:
                raise NoLeaderError("No cluster leader (a snapshot save reached a follower)")
            addr = await self._leader_http()
            if addr != self._ctx.http_addr:
                fwd = dataclasses.replace(req, forwarded=True)
                return await self._rpc.call(addr, OPERATOR_SNAPSHOT_SAVE, fwd, timeout=SAVE_TIMEOUT_S)
        archive, index = await take_archive(self._ctx)
        return SnapshotSaveReply(meta=self._meta(index), archive=archive)

    async def save_here(self, req: SnapshotSaveRequest) -> tuple[SavedArchive, QueryMeta] | None:
        """The archive in a file, when this server takes it itself (the leader, or any server
        of the region for a stale save), for the HTTP edge to stream without holding it; None
        when another server must (the edge then calls :meth:`save` through the RPC, which
        forwards it and answers the archive's bytes). The caller closes the file."""
        if req.region not in ("", self._ctx.config.region):
            return None
        if not req.allow_stale and not self._ctx.raft.is_leader():
            return None
        saved = await take_archive_file(self._ctx)
        return saved, self._meta(saved.index)

    def _meta(self, index: int) -> QueryMeta:
        raft = self._ctx.raft
        return QueryMeta(
            index=index, known_leader=raft.known_leader(), last_contact_ms=raft.last_contact_ms()
        )

    async def restore_chunk(self, req: SnapshotRestoreChunkRequest) -> SnapshotRestoreChunkReply:
        entry = SnapshotChunkEntry(
            restore_id=req.restore_id,
            seq=req.seq,
            total=req.total,
            sha256=req.sha256,
            data=req.data,
            sent_at_ns=time.time_ns(),
        )
        result, index = await self._ctx.propose(MessageType.SNAPSHOT_RESTORE_CHUNK, entry)
        assert isinstance(result, RestoreResult)
        if result.error:
            raise ValidationError(f"snapshot restore failed: {result.error}")
        if not result.done and req.seq == req.total - 2:
            await self._prepared(req)
        if result.done and not result.repeated:
            logger.info(
                "snapshot restored restore_id=%s raft_index=%d snapshot_index=%d",
                req.restore_id,
                index,
                result.restored_index,
            )
            if self._on_restored is not None:
                self._on_restored()
        return SnapshotRestoreChunkReply(
            meta=WriteMeta(index=index), done=result.done, restored_index=result.restored_index
        )

    async def _prepared(self, req: SnapshotRestoreChunkRequest) -> None:
        """Answer the next-to-last chunk once this server has decoded the archive (decoded as
        its chunks were applied; the followers decode theirs meanwhile), so the last entry
        only swaps the tables."""
        if self._restorer is None:
            return
        t0 = time.monotonic()
        done = await asyncio.to_thread(self._restorer.wait_decoded, req.restore_id, req.sha256, DECODE_WAIT_S)
        took = time.monotonic() - t0
        logger.info(
            "snapshot restore decoded ahead restore_id=%s waited=%.3fs done=%s", req.restore_id, took, done
        )


class RestoreJanitor(PeriodicLeaderTask):
    """Leader component: drops a restore whose upload stopped midway (no chunk for
    ``RESTORE_IDLE_S``), so its staged chunks do not stay in memory. A restore that is still
    sending survives a leader change: the uploader sends the next chunk to the new leader."""

    name = "snapshot-restore-janitor"

    def __init__(self, ctx: ServerContext, idle_s: float = RESTORE_IDLE_S) -> None:
        super().__init__()
        self._ctx = ctx
        self._idle_s = idle_s

    def interval_s(self) -> float:
        return min(JANITOR_INTERVAL_S, self._idle_s)

    async def tick(self) -> object:
        await self.check()
        return None

    async def check(self) -> None:
        staged, sent_at_ns = staged_restore(self._ctx.store.snapshot().table(STAGING_TABLE))
        if not staged or time.time_ns() - sent_at_ns < self._idle_s * 1e9:
            return
        try:
            await self._ctx.propose(MessageType.SNAPSHOT_RESTORE_ABORT, SnapshotAbortEntry(restore_id=staged))
            logger.warning("dropped an abandoned snapshot restore restore_id=%s", staged)
        except NomaddError as err:
            logger.warning("cannot drop an abandoned snapshot restore restore_id=%s err=%s", staged, err)
