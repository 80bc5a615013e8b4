"""Operator snapshots: the archive format, chunked restore through the FSM, refusals."""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import hashlib
import io
import json
import os
import tarfile
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from pysyncobj.config import SERIALIZER_STATE

from nomadd.helper.snapshot_archive import SnapshotError, build_archive, read_archive, table_stats
from nomadd.server.fsm import FSM
from nomadd.server.fsm.dispatch import entry_kinds
from nomadd.server.fsm.snapshot import STAGING_TABLE, SnapshotRestorer
from nomadd.server.raft import MAX_ENTRY_BYTES
from nomadd.server.snapshot_endpoint import CHUNK_BYTES, RestoreJanitor, SnapshotEndpoint
from nomadd.server.snapshot_schedule import prune, write_snapshot
from nomadd.server.state.store import StateStore, register_table
from nomadd.structs.codec import pack
from nomadd.structs.errors import ValidationError
from nomadd.structs.messages import MessageType
from nomadd.structs.requests.snapshot import (
    OPERATOR_SNAPSHOT_RESTORE_CHUNK,
    OPERATOR_SNAPSHOT_SAVE,
    RestoreResult,
    SnapshotChunkEntry,
    SnapshotRestoreChunkRequest,
    SnapshotSaveRequest,
)
from nomadd.structs.requests.variables import VarUpsertEntry
from tests.unit.server.fakes import FakeServer, api_job

register_table("t_snapshot_rows")  # values stored as they are


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def _server() -> FakeServer:
    server = FakeServer()
    SnapshotEndpoint(server.ctx).register(server.registry)
    return server


async def _fill(server: FakeServer, jobs: int = 3) -> None:
    for _ in range(2):
        await server.add_node()
    for i in range(jobs):
        await server.register_job(api_job(f"job-{i}", count=2))
    var = VarUpsertEntry(namespace="default", path="app/cfg", key_id="k", data=b"v", time=1)
    await server.raft.apply(MessageType.VAR_UPSERT, pack(var))


def _tables(store: StateStore) -> dict[str, dict[str, Any]]:
    snap = store.snapshot()
    return {n: dict(snap.table(n)) for n in snap._tables if n != STAGING_TABLE and snap.table(n)}


async def _restore(server: FakeServer, archive: bytes, chunk: int, sha: str | None = None) -> Any:
    total = max(1, -(-len(archive) // chunk))
    rid = str(uuid.uuid4())
    reply = None
    for seq in range(total):
        req = SnapshotRestoreChunkRequest(
            restore_id=rid,
            seq=seq,
            total=total,
            sha256=sha or hashlib.sha256(archive).hexdigest(),
            data=archive[seq * chunk : (seq + 1) * chunk],
        )
        reply = await server.rpc(OPERATOR_SNAPSHOT_RESTORE_CHUNK, req)
    return reply


def test_save_restore_into_fresh_server_gives_identical_tables_on_leader_and_follower() -> None:
    async def main() -> None:
        src = _server()
        await _fill(src)
        saved = await src.rpc(OPERATOR_SNAPSHOT_SAVE, SnapshotSaveRequest())
        meta, state = read_archive(saved.archive)
        assert meta.index == src.store.latest_index() and meta.term == 1 and meta.version == 1
        assert {t for t, _, _ in table_stats(state)} >= {"jobs", "nodes", "evals", "variables"}

        dst = _server()
        await dst.register_job(api_job("other"))  # replaced by the restore
        reply = await _restore(dst, saved.archive, chunk=512)  # many chunks
        assert reply.done and reply.restored_index == meta.index
        want = _tables(src.store)
        assert _tables(dst.store) == want
        assert _tables(dst.follower().store) == want  # followers decode the same entries
        assert set(dst.store.snapshot().table(STAGING_TABLE)) == {"done"}  # no chunk kept
        snap = dst.store.snapshot()
        assert snap.table_index("jobs") == reply.meta.index  # indexes move forward, not back

    _run(main())


def _corrupt(archive: bytes) -> bytes:
    raw = bytearray(gzip.decompress(archive))
    raw[len(raw) // 2] ^= 0xFF  # inside state.bin
    return gzip.compress(bytes(raw))


def test_corrupt_or_truncated_archive_is_refused_before_and_inside_the_fsm() -> None:
    async def main() -> None:
        src = _server()
        await _fill(src)
        archive = (await src.rpc(OPERATOR_SNAPSHOT_SAVE, SnapshotSaveRequest())).archive
        for bad, why in ((_corrupt(archive), "checksum mismatch"), (archive[:-40], "truncated")):
            with pytest.raises(SnapshotError):
                read_archive(bad)
            dst = _server()
            await _fill(dst, jobs=1)
            before = _tables(dst.store)
            with pytest.raises(ValidationError, match="snapshot"):
                await _restore(dst, bad, chunk=700)
            assert _tables(dst.store) == before, why
            assert not dst.store.snapshot().table(STAGING_TABLE)
        # the whole-upload checksum is checked too
        dst = _server()
        with pytest.raises(ValidationError, match="checksum mismatch"):
            await _restore(dst, archive, chunk=700, sha="0" * 64)

    _run(main())


def _rewrite_meta(archive: bytes, **changes: Any) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(archive))) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar}  # type: ignore[union-attr]
    meta = json.loads(files["meta.json"])
    meta.update(changes)
    files["meta.json"] = json.dumps(meta).encode()
    sums = "".join(f"{hashlib.sha256(files[n]).hexdigest()}  {n}\n" for n in ("meta.json", "state.bin"))
    files["SHA256SUMS"] = sums.encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buf.getvalue())


def test_unknown_format_version_is_refused() -> None:
    archive = build_archive(StateStore().dump(), index=5, term=2)
    assert read_archive(archive)[0].index == 5
    with pytest.raises(SnapshotError, match="format version 2 is not supported"):
        read_archive(_rewrite_meta(archive, Version=2))
    with pytest.raises(SnapshotError, match="empty"):
        read_archive(b"")
    with pytest.raises(SnapshotError, match="gzip"):
        read_archive(b"not a snapshot at all")


def test_chunks_resent_are_accepted_once_others_rejected_and_abandoned_uploads_dropped() -> None:
    async def main() -> None:
        src = _server()
        await _fill(src)
        archive = (await src.rpc(OPERATOR_SNAPSHOT_SAVE, SnapshotSaveRequest())).archive
        sha = hashlib.sha256(archive).hexdigest()
        half = len(archive) // 2
        dst = _server()

        def chunk(rid: str, seq: int) -> SnapshotRestoreChunkRequest:
            data = archive[:half] if seq == 0 else archive[half:]
            return SnapshotRestoreChunkRequest(restore_id=rid, seq=seq, total=2, sha256=sha, data=data)

        await dst.rpc(OPERATOR_SNAPSHOT_RESTORE_CHUNK, chunk("a", 0))
        before = len(dst.raft.entries)
        await dst.rpc(OPERATOR_SNAPSHOT_RESTORE_CHUNK, chunk("a", 0))  # sent again: accepted, no change
        assert len(dst.store.snapshot().table(STAGING_TABLE)) == 2 and len(dst.raft.entries) == before + 1
        with pytest.raises(ValidationError, match="not in progress"):
            await dst.rpc(OPERATOR_SNAPSHOT_RESTORE_CHUNK, chunk("b", 1))
        with pytest.raises(ValidationError, match="out of order"):
            await dst.rpc(OPERATOR_SNAPSHOT_RESTORE_CHUNK, _seq(chunk("a", 0), 3))
        await dst.rpc(OPERATOR_SNAPSHOT_RESTORE_CHUNK, chunk("b", 0))  # replaces "a"
        with pytest.raises(ValidationError, match="not in progress"):
            await dst.rpc(OPERATOR_SNAPSHOT_RESTORE_CHUNK, chunk("a", 1))
        # a leader (janitor) keeps an upload that is still sending, drops an abandoned one
        await RestoreJanitor(dst.ctx, idle_s=60).check()
        assert dst.store.snapshot().table(STAGING_TABLE)
        await RestoreJanitor(dst.ctx, idle_s=0).check()
        assert not dst.store.snapshot().table(STAGING_TABLE)
        with pytest.raises(ValidationError, match="not in progress"):
            await dst.rpc(OPERATOR_SNAPSHOT_RESTORE_CHUNK, chunk("b", 1))
        # the last chunk sent again after the restore completed answers "done" (its answer was lost)
        await dst.rpc(OPERATOR_SNAPSHOT_RESTORE_CHUNK, chunk("c", 0))
        first = await dst.rpc(OPERATOR_SNAPSHOT_RESTORE_CHUNK, chunk("c", 1))
        again = await dst.rpc(OPERATOR_SNAPSHOT_RESTORE_CHUNK, chunk("c", 1))
        assert first.done and again.done and again.restored_index == first.restored_index
        assert _tables(dst.store) == _tables(src.store)

    _run(main())


def _seq(req: SnapshotRestoreChunkRequest, seq: int) -> SnapshotRestoreChunkRequest:
    import dataclasses

    return dataclasses.replace(req, seq=seq, total=4)


def test_scheduled_snapshot_files_are_written_and_pruned(tmp_path: Path) -> None:
    archive = build_archive(StateStore().dump(), index=1, term=1)
    paths = [write_snapshot(tmp_path, archive, i, now=1_700_000_000 + i) for i in range(5)]
    assert all(p.exists() for p in paths)
    removed = prune(tmp_path, 2)
    assert removed == paths[:3]
    assert sorted(tmp_path.iterdir()) == paths[3:]
    assert read_archive(paths[-1].read_bytes())[0].index == 1


def test_resent_chunks_change_nothing_and_the_restore_completes() -> None:
    """A chunk whose answer was lost (a leader change mid-upload) is sent again: accepted once."""

    async def main() -> None:
        src = _server()
        await _fill(src)
        archive = (await src.rpc(OPERATOR_SNAPSHOT_SAVE, SnapshotSaveRequest())).archive
        sha = hashlib.sha256(archive).hexdigest()
        size = -(-len(archive) // 3)
        dst = _server()

        def chunk(seq: int) -> SnapshotRestoreChunkRequest:
            data = archive[seq * size : (seq + 1) * size]
            return SnapshotRestoreChunkRequest(restore_id="r", seq=seq, total=3, sha256=sha, data=data)

        await dst.rpc(OPERATOR_SNAPSHOT_RESTORE_CHUNK, chunk(0))
        await dst.rpc(OPERATOR_SNAPSHOT_RESTORE_CHUNK, chunk(1))
        staged = dict(dst.store.snapshot().table(STAGING_TABLE))
        await dst.rpc(OPERATOR_SNAPSHOT_RESTORE_CHUNK, chunk(1))  # again
        await dst.rpc(OPERATOR_SNAPSHOT_RESTORE_CHUNK, chunk(0))  # again: does not start over
        assert dict(dst.store.snapshot().table(STAGING_TABLE)) == staged
        reply = await dst.rpc(OPERATOR_SNAPSHOT_RESTORE_CHUNK, chunk(2))
        assert reply.done and _tables(dst.store) == _tables(src.store)

    _run(main())


def test_archive_is_decoded_as_chunks_arrive_and_the_empty_last_chunk_swaps_the_same_tables() -> None:
    async def main() -> None:
        src = _server()
        await _fill(src)
        archive = (await src.rpc(OPERATOR_SNAPSHOT_SAVE, SnapshotSaveRequest())).archive
        sha = hashlib.sha256(archive).hexdigest()
        size = -(-len(archive) // 3)
        parts = [archive[i * size : (i + 1) * size] for i in range(3)] + [b""]
        restorer = SnapshotRestorer()
        ahead = FSM(StateStore(), entry_kinds(restorer))
        other = FSM(StateStore(), entry_kinds())  # another server: its own decoder
        for seq, data in enumerate(parts):
            entry = SnapshotChunkEntry(restore_id="r", seq=seq, total=4, sha256=sha, data=data)
            payload = pack(entry)
            if seq == 3:  # every data chunk applied: decoded, before the last entry
                assert restorer.wait_decoded("r", sha, timeout=30)
            results = [
                fsm.apply(10 + seq, MessageType.SNAPSHOT_RESTORE_CHUNK, payload) for fsm in (ahead, other)
            ]
        assert all(isinstance(r, RestoreResult) and r.done for r in results)
        assert not restorer.wait_decoded("r", sha, timeout=0)  # taken by the last entry
        assert _tables(ahead.store) == _tables(other.store) == _tables(src.store)

    _run(main())


def test_an_archive_is_written_through_an_unnamed_file_and_reads_back(tmp_path: Path) -> None:
    """``operator snapshot save`` writes the archive into a file no name points to (in the first
    directory that takes one): the same state, nothing left on disk, the staging table left out."""
    from nomadd.server.snapshot_endpoint import _unnamed_file, _write_state_archive
    from nomadd.server.state.store import decode_dump

    store = StateStore()
    with store.write(4) as txn:
        for i in range(3000):
            txn.put(STAGING_TABLE if i == 0 else "t_snapshot_rows", f"k{i}", f"v{i}")
    keep = tmp_path / "keep"
    keep.mkdir()
    fd = _unnamed_file((str(tmp_path / "missing"), str(keep)))
    try:
        written = _write_state_archive(store.snapshot(), 7, fd)
        assert list(keep.iterdir()) == []
        archive = os.pread(fd, written.size + 1, 0)
    finally:
        os.close(fd)
    assert (len(archive), hashlib.sha256(archive).hexdigest()) == (written.size, written.sha256)
    meta, state = read_archive(archive)
    assert (meta.index, meta.term) == (4, 7)
    _, tables = decode_dump(state)
    assert STAGING_TABLE not in tables and tables["t_snapshot_rows"]["k2999"] == "v2999"


def test_a_full_restore_chunk_fits_in_one_raft_entry() -> None:
    """A chunk of CHUNK_BYTES, with the entry's other fields at their longest, is a payload
    Raft takes (``Raft.apply`` refuses one over MAX_ENTRY_BYTES)."""
    entry = SnapshotChunkEntry(
        restore_id=str(uuid.uuid4()),
        seq=2**40,
        total=2**40,
        sha256="f" * 64,
        data=b"\xff" * CHUNK_BYTES,
        sent_at_ns=2**63 - 1,
    )
    assert len(pack(entry)) <= MAX_ENTRY_BYTES


def test_the_save_child_runs_at_the_servers_priority(monkeypatch: pytest.MonkeyPatch) -> None:
    """An operator waits for a save: its child is not made as nice as a Raft dump child (with which
    it shares the cores on an idle cluster), only SAVE_CHILD_NICE steps nicer than the server."""
    from nomadd.helper.snapshot_writer import WrittenArchive
    from nomadd.server import snapshot_endpoint
    from nomadd.server.forked import CHILD_NICE

    def niceness(*_: Any) -> WrittenArchive:  # what the child reports: its own niceness as the size
        return WrittenArchive(size=os.nice(0), sha256="0" * 64, state_size=0, state_sha256="")

    monkeypatch.setattr(snapshot_endpoint, "_write_state_archive", niceness)
    saved = _run(snapshot_endpoint.take_archive_file(_server().ctx))
    saved.close()
    assert snapshot_endpoint.SAVE_CHILD_NICE < CHILD_NICE
    assert saved.size == min(19, os.nice(0) + snapshot_endpoint.SAVE_CHILD_NICE)


def test_a_save_copies_the_raft_dump_instead_of_encoding_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a Raft full dump at the save's index (Raft.dump_for_save), the save copies its
    store member: no second encoder of the same state (no forked child); the archive holds
    what encoding the store gives. A dump holding a staged restore is not copied."""
    from nomadd.server import snapshot_endpoint
    from nomadd.server.raft.dump import DumpSerializer
    from nomadd.server.state.store_codec import dump_snapshot

    server = _server()
    _run(_fill(server))
    dumper = DumpSerializer(server.fsm, str(tmp_path / "raft.dump"))
    dumper.serialize(str(tmp_path / "raft.dump"), ("tail", 1))
    deadline = time.monotonic() + 20
    while dumper.check() != SERIALIZER_STATE.SUCCESS:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    asked: list[int] = []

    async def dump_for_save(index: int, timeout: float) -> object:
        asked.append(index)
        return dumper.dump_at(index)

    async def no_fork(*_: Any, **__: Any) -> bytes:
        raise AssertionError("the save encoded the store")

    monkeypatch.setattr(server.raft, "dump_for_save", dump_for_save, raising=False)
    monkeypatch.setattr(snapshot_endpoint, "run_forked", no_fork)
    saved = _run(snapshot_endpoint.take_archive_file(server.ctx))
    try:
        archive = saved.file.read()
    finally:
        saved.close()
    meta, state = read_archive(archive)
    index = server.store.latest_index()
    assert asked == [index] and saved.index == meta.index == index and len(archive) == saved.size
    assert state == dump_snapshot(server.store.snapshot())
    dst = _server()  # and it restores (leader and follower) as an encoded archive does
    reply = _run(_restore(dst, archive, chunk=4096))
    assert reply.done and reply.restored_index == index
    assert _tables(dst.store) == _tables(server.store) == _tables(dst.follower().store)
    assert dumper.dumped is not None
    dumper.dumped = dataclasses.replace(dumper.dumped, tables=frozenset({STAGING_TABLE}))
    with pytest.raises(AssertionError, match="encoded the store"):  # a staged restore: encoded
        _run(snapshot_endpoint.take_archive_file(server.ctx))
