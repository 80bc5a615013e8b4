"""A snapshot restore decoded as its chunks are applied (nomadd/server/fsm/snapshot.py): a bad
archive refused at any byte, a server restarted mid-restore, the replaced state freed off the
apply thread, an idle decoder that stops."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import gzip
import hashlib
import io
import os
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nomadd.helper.snapshot_archive import (
    SnapshotError,
    build_archive,
    check_archive_file,
    read_archive,
    read_archive_stream,
)
from nomadd.server.fsm import FSM
from nomadd.server.fsm import snapshot as snapshot_module
from nomadd.server.fsm.dispatch import entry_kinds
from nomadd.server.fsm.snapshot import STAGING_TABLE, SnapshotRestorer, _decode_state
from nomadd.server.state.store import StateStore, decode_dump, dump_snapshot, register_table
from nomadd.structs.codec import pack
from nomadd.structs.messages import MessageType
from nomadd.structs.requests.snapshot import (
    OPERATOR_SNAPSHOT_SAVE,
    RestoreResult,
    SnapshotAbortEntry,
    SnapshotChunkEntry,
    SnapshotSaveRequest,
)
from tests.unit.server.state.runs_state import runs_store
from tests.unit.server.test_snapshot import _fill, _server, _tables

register_table("t_snapshot_freed")  # values put directly (never dumped)


def _same_content(data: bytes, archive: bytes) -> bool:
    """A changed byte gzip does not cover (header mtime, XFL, OS, a FLG bit it ignores): the
    archive it makes holds exactly the original's bytes."""
    try:
        return gzip.decompress(data) == gzip.decompress(archive)
    except (OSError, EOFError, zlib.error):
        return False


def _gzip_edge(archive: bytes, pos: int) -> bool:
    """Whether byte ``pos`` is in the 10-byte header of one of the archive's gzip members (it is
    two: snapshot_writer) or among a member's last 48 bytes: the only bytes :func:`_same_content`
    may find changed harmlessly (header mtime, XFL, OS, ignored FLG bits; at the end, the final
    deflate block's unused bits, and the few bytes encoding the tar's trailing zero blocks, where
    a changed match distance still copies zeros: seen 18-25 bytes before a member's end)."""
    starts = [i for i in range(len(archive) - 2) if archive[i : i + 3] == b"\x1f\x8b\x08"]
    ends = [*starts[1:], len(archive)]
    return any(0 <= pos - s < 10 for s in starts) or any(0 < e - pos <= 48 for e in ends)


def _archive() -> tuple[bytes, dict[str, dict[str, Any]]]:
    async def main() -> tuple[bytes, dict[str, dict[str, Any]]]:
        src = _server()
        await _fill(src, jobs=2)
        reply = await src.rpc(OPERATOR_SNAPSHOT_SAVE, SnapshotSaveRequest())
        return reply.archive, _tables(src.store)

    result: tuple[bytes, dict[str, dict[str, Any]]] = asyncio.run(main())
    return result


def _chunks(archive: bytes, size: int) -> list[bytes]:
    """The upload's chunks: the data, then an empty last one (as the HTTP edge sends them)."""
    return [archive[i : i + size] for i in range(0, len(archive), size)] + [b""]


def _apply(
    fsms: list[FSM], archive: bytes, size: int = 700, rid: str = "r", first_index: int = 100
) -> list[object]:
    sha = hashlib.sha256(archive).hexdigest()
    parts = _chunks(archive, size)
    results: list[object] = []
    for seq, data in enumerate(parts):
        payload = pack(SnapshotChunkEntry(restore_id=rid, seq=seq, total=len(parts), sha256=sha, data=data))
        results = [f.apply(first_index + seq, MessageType.SNAPSHOT_RESTORE_CHUNK, payload) for f in fsms]
    return results


def _wait(cond: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def _decoders() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "snapshot-restore-decode"]


def test_truncation_or_corruption_at_any_byte_is_refused_and_changes_nothing() -> None:
    archive, want = _archive()
    base = FSM(StateStore(), entry_kinds())
    with base.store.write(1) as txn:
        txn.put("t_snapshot_freed", "k", "kept")
    before = _tables(base.store)
    step = max(1, len(archive) // 150)
    bad: list[tuple[str, int, bytes]] = [("truncated", n, archive[:n]) for n in range(0, len(archive), step)]
    bad += [("truncated", n, archive[:n]) for n in range(len(archive) - 12, len(archive))]  # the trailer
    for pos in [*range(0, 40), *range(40, len(archive), step), *range(len(archive) - 12, len(archive))]:
        flipped = bytearray(archive)
        flipped[pos] ^= 0x41
        bad.append(("corrupt", pos, bytes(flipped)))
    for what, pos, data in bad:
        harmless = what == "corrupt" and _same_content(data, archive)
        try:
            read_archive(data)
        except SnapshotError:
            pass
        else:
            assert harmless, f"{what} at byte {pos} of {len(archive)} was accepted"
        (result,) = _apply([base], data, first_index=100 + 10 * len(archive) + pos)
        assert isinstance(result, RestoreResult)
        if harmless and not result.error:  # the same state restored: then put it back
            assert _tables(base.store) == {**want}
            base = FSM(StateStore(), entry_kinds())
            with base.store.write(1) as txn:
                txn.put("t_snapshot_freed", "k", "kept")
            continue
        assert result.error and not result.done, f"{what} at byte {pos}: {result}"
        assert _tables(base.store) == before, f"{what} at byte {pos} changed the state"
        assert set(base.store.snapshot().table(STAGING_TABLE)) <= {"done"}
    harmless_at = [pos for w, pos, d in bad if w == "corrupt" and _same_content(d, archive)]
    assert all(_gzip_edge(archive, pos) for pos in harmless_at), harmless_at  # header, padding only
    (result,) = _apply([base], archive)  # and the archive itself restores
    assert isinstance(result, RestoreResult) and result.done and _tables(base.store) == want


def test_a_server_restarted_mid_restore_comes_back_consistent() -> None:
    """A server restarted from a Raft dump taken mid-restore has the staged chunks but no
    decoder: it decodes from the staged chunks and ends with the same tables."""
    archive, want = _archive()
    sha = hashlib.sha256(archive).hexdigest()
    parts = _chunks(archive, 500)
    assert len(parts) > 4
    running = FSM(StateStore(), entry_kinds())
    half = len(parts) // 2
    for seq, data in enumerate(parts[:half]):
        entry = SnapshotChunkEntry(restore_id="r", seq=seq, total=len(parts), sha256=sha, data=data)
        running.apply(10 + seq, MessageType.SNAPSHOT_RESTORE_CHUNK, pack(entry))
    restarted = FSM(StateStore(), entry_kinds())
    restarted.restore(running.dump())
    for seq, data in enumerate(parts[half:], start=half):
        entry = SnapshotChunkEntry(restore_id="r", seq=seq, total=len(parts), sha256=sha, data=data)
        results = [
            f.apply(10 + seq, MessageType.SNAPSHOT_RESTORE_CHUNK, pack(entry)) for f in (running, restarted)
        ]
    assert all(isinstance(r, RestoreResult) and r.done and not r.error for r in results), results
    assert _tables(running.store) == _tables(restarted.store) == want


def test_the_old_state_is_served_until_the_last_chunk_swaps_the_archives_in() -> None:
    """What an operator sees while a restore uploads (Nomad's behaviour): every server keeps
    serving the state it had, writes included, until the last chunk swaps in the archive's
    state in one entry; what was written meanwhile is replaced, as everything else is."""
    archive, want = _archive()
    sha = hashlib.sha256(archive).hexdigest()
    parts = _chunks(archive, 500)
    fsm = FSM(StateStore(), entry_kinds())
    with fsm.store.write(1) as txn:
        txn.put("t_snapshot_freed", "old", "row")
    for seq, data in enumerate(parts):
        if seq == len(parts) - 1:
            assert fsm.store.get("t_snapshot_freed", "old") == "row"
            assert fsm.store.get("t_snapshot_freed", "during") == "write"
        entry = SnapshotChunkEntry(restore_id="r", seq=seq, total=len(parts), sha256=sha, data=data)
        result = fsm.apply(10 + 2 * seq, MessageType.SNAPSHOT_RESTORE_CHUNK, pack(entry))
        with fsm.store.write(11 + 2 * seq) as txn:
            txn.put("t_snapshot_freed", "during", "write")  # another entry, between two chunks
    assert isinstance(result, RestoreResult) and result.done
    assert fsm.store.get("t_snapshot_freed", "old") is None
    assert {n: rows for n, rows in _tables(fsm.store).items() if n != "t_snapshot_freed"} == want


def _fd_links() -> list[str]:
    """What this process's open fds point at (an unlinked file: its path and " (deleted)")."""
    out = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the listing's own fd, closed by now
            out.append(os.readlink(f"/proc/self/fd/{fd}"))
    return out


def test_staged_chunks_are_spooled_to_disk_not_held_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every server stages the whole archive until its last chunk (263 MB at a million
    allocations, beside the old and the new state): the staging table holds references into
    an unlinked file in the data dir, equal to the chunks and dumped as their bytes, and the
    file is gone once the restore is dropped."""
    chunk, count = 64 * 1024, 20
    parts = [os.urandom(chunk) for _ in range(count)]

    def drain(f: Any, _decode: Any) -> None:  # a decoder that keeps up and holds nothing
        while f.read(chunk):
            pass
        raise SnapshotError("not an archive")

    monkeypatch.setattr(snapshot_module, "read_archive_stream", drain)
    restorer = SnapshotRestorer(spool_dir=str(tmp_path))
    fsm = FSM(StateStore(), entry_kinds(restorer))
    fds = len(os.listdir("/proc/self/fd"))
    tracemalloc.start()
    try:
        for seq, data in enumerate(parts):
            entry = SnapshotChunkEntry(restore_id="r", seq=seq, total=count + 1, sha256="0" * 64, data=data)
            fsm.apply(10 + seq, MessageType.SNAPSHOT_RESTORE_CHUNK, pack(entry))
        del entry, data
        assert restorer.wait_decoded("r", "0" * 64, timeout=10)
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held < chunk * count / 4, f"{held} bytes held for {chunk * count} staged"
    assert not os.listdir(tmp_path)  # unlinked: nothing left behind by a crash
    staged = fsm.store.snapshot().table(STAGING_TABLE)
    assert [staged[f"chunk/{i:08d}"] for i in range(count)] == parts
    copy = FSM(StateStore(), entry_kinds())
    copy.restore(fsm.dump())  # a Raft dump taken mid-restore holds the bytes
    assert [copy.store.snapshot().table(STAGING_TABLE)[f"chunk/{i:08d}"] for i in range(count)] == parts
    del staged
    fsm.apply(50, MessageType.SNAPSHOT_RESTORE_ABORT, pack(SnapshotAbortEntry(restore_id="r")))
    gc.collect()
    # the spool file closed: no fd of this process on it (precisely), and the count back where it
    # was (a thread of the restore may hold a passing fd as it ends: waited for, bounded)
    assert not [fd for fd in _fd_links() if fd.startswith(str(tmp_path))]
    deadline = time.monotonic() + 5
    while len(os.listdir("/proc/self/fd")) != fds and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(os.listdir("/proc/self/fd")) == fds


class _Tracked:
    """A row that records which thread freed it."""

    freed_on: list[str] = []  # the test's shared record

    def __del__(self) -> None:
        _Tracked.freed_on.append(threading.current_thread().name)


def test_the_replaced_state_is_freed_off_the_apply_thread() -> None:
    archive, want = _archive()
    fsm = FSM(StateStore(), entry_kinds())
    rows = 5000
    with fsm.store.write(1) as txn:
        for i in range(rows):
            txn.put("t_snapshot_freed", f"k{i}", _Tracked())
    _Tracked.freed_on = []
    (result,) = _apply([fsm], archive)  # applied on this (the test's main) thread
    assert isinstance(result, RestoreResult) and result.done
    assert _tables(fsm.store) == want
    _wait(lambda: len(_Tracked.freed_on) == rows, "the replaced rows to be freed")
    on_apply = [name for name in _Tracked.freed_on if name == threading.current_thread().name]
    assert not on_apply, f"{len(on_apply)} of {rows} replaced rows were freed on the apply thread"


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_a_freed_state_gives_its_heap_back_to_the_system() -> None:
    """Blocks of ~1 MiB come from glibc's heap once one was freed (its mmap threshold rises),
    and freed they stayed in the process's RSS: the freeing thread trims the heap when done."""
    block = os.urandom(1 << 20)
    del block  # a freed ~1 MiB block: later ones, a bit smaller, come from the heap
    rows, kept = {}, []
    for i in range(64):  # each row followed by a block that lives on: the heap cannot shrink from its top
        rows[f"k{i}"] = os.urandom((1 << 20) - 4096)
        kept.append(bytes(4096))
    tables: dict[str, Any] = {"t": rows}
    del rows
    held = _rss_mb()
    snapshot_module._free(tables)
    assert held - _rss_mb() > 32, f"RSS {held:.0f} MB with 64 MB of rows, {_rss_mb():.0f} MB after"


def test_the_decoder_trims_the_heap_when_it_starts_and_every_few_dozen_mb() -> None:
    """The C heap's free space is not reused by the state a restore builds: the decoder
    trims it first, then as it goes."""
    piece = 1 << 20
    trims: list[int] = []
    left = [5 * snapshot_module.TRIM_EVERY_BYTES // piece]

    class Source:
        def read(self, size: int = -1, /) -> bytes:
            if not left[0]:
                return b""
            left[0] -= 1
            return bytes(piece)

    read = [0]
    f = snapshot_module._Trimmed(Source(), trim=lambda: trims.append(read[0]))
    while data := f.read(piece):
        read[0] += len(data)
    every = snapshot_module.TRIM_EVERY_BYTES
    assert trims == [0, every, 2 * every, 3 * every, 4 * every, 5 * every]


def test_an_idle_decoder_stops_and_the_restore_still_completes() -> None:
    archive, want = _archive()
    sha = hashlib.sha256(archive).hexdigest()
    parts = _chunks(archive, 700)
    fsm = FSM(StateStore(), entry_kinds(SnapshotRestorer(idle_s=0.2)))
    assert not _decoders()

    def chunk(seq: int) -> bytes:
        return pack(
            SnapshotChunkEntry(restore_id="r", seq=seq, total=len(parts), sha256=sha, data=parts[seq])
        )

    fsm.apply(10, MessageType.SNAPSHOT_RESTORE_CHUNK, chunk(0))
    assert _decoders()
    _wait(lambda: not _decoders(), "the idle decoder to stop")
    for seq in range(1, len(parts)):  # the upload goes on: a new decoder, from the staged chunks
        result = fsm.apply(10 + seq, MessageType.SNAPSHOT_RESTORE_CHUNK, chunk(seq))
    assert isinstance(result, RestoreResult) and result.done and _tables(fsm.store) == want
    _wait(lambda: not _decoders(), "the decoder to end")


def test_an_aborted_restore_stops_its_decoder() -> None:
    archive, _ = _archive()
    sha = hashlib.sha256(archive).hexdigest()
    fsm = FSM(StateStore(), entry_kinds())
    entry = SnapshotChunkEntry(restore_id="r", seq=0, total=3, sha256=sha, data=archive[:700])
    fsm.apply(10, MessageType.SNAPSHOT_RESTORE_CHUNK, pack(entry))
    assert _decoders()
    fsm.apply(11, MessageType.SNAPSHOT_RESTORE_ABORT, pack(SnapshotAbortEntry(restore_id="r")))
    _wait(lambda: not _decoders(), "the aborted restore's decoder to stop")
    assert not fsm.store.snapshot().table(STAGING_TABLE)


def test_a_state_that_does_not_decode_is_refused_even_with_good_checksums() -> None:
    """The checksums hold but the dump is not one: refused by the decoder, nothing changes."""
    from nomadd.helper.snapshot_archive import build_archive

    archive = build_archive(b"\x93not a dump", index=3, term=1)
    read_archive_stream(io.BytesIO(archive))  # a valid archive
    fsm = FSM(StateStore(), entry_kinds())
    (result,) = _apply([fsm], archive)
    assert isinstance(result, RestoreResult) and "cannot be decoded" in result.error
    assert not _tables(fsm.store)


@pytest.mark.parametrize("size", [1, 3, 4096])
def test_the_stream_reader_takes_any_piece_size(size: int) -> None:
    from nomadd.helper.snapshot_archive import ArchivePipe

    archive, _ = _archive()
    pipe = ArchivePipe()
    for i in range(0, len(archive), size):
        pipe.feed(archive[i : i + size])
    pipe.close()
    meta, state = read_archive_stream(pipe, lambda f: f.read())
    assert (meta, state) == read_archive(archive)


def test_the_cli_checks_an_archive_file_as_it_reads_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``operator snapshot restore`` refuses a bad file before it talks to the agent."""
    from nomadd.cli import operator_snapshot_restore

    archive, _ = _archive()
    good, cut = tmp_path / "good.snap", tmp_path / "cut.snap"
    good.write_bytes(archive)
    cut.write_bytes(archive[: len(archive) // 2])
    assert check_archive_file(str(good)) == read_archive(archive)[0]
    with pytest.raises(SnapshotError, match="truncated"):
        check_archive_file(str(cut))
    with pytest.raises(SnapshotError, match="cannot open"):
        check_archive_file(str(tmp_path / "missing.snap"))
    # no agent at this address: refused by the check, not by a connection error
    env = {"NOMAD_ADDR": "http://127.0.0.1:9"}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        assert operator_snapshot_restore.run([str(cut)]) == 1
    assert "Error verifying snapshot file" in capsys.readouterr().err


class _NoWholeRead:
    """A stream that refuses to be read whole (``read()`` without a size)."""

    def __init__(self, data: bytes) -> None:
        self._f = io.BytesIO(data)

    def read(self, size: int = -1, /) -> bytes:
        assert size >= 0, "the dump was read whole, not row by row"
        return self._f.read(size)


def test_a_dump_of_the_version_written_today_is_decoded_row_by_row() -> None:
    """The restore's decoder streams every dump version the servers write (the check once named
    version 2 only, and a version 3 dump was read whole before decoding)."""
    archive, _ = _archive()
    _, state = read_archive(archive)
    tables = _decode_state(_NoWholeRead(state))
    assert tables.keys() == decode_dump(state)[1].keys()
    assert {n: dict(rows) for n, rows in tables.items()} == {
        n: dict(rows) for n, rows in decode_dump(state)[1].items()
    }


def test_a_restore_keeps_the_allocations_the_running_state_holds_equal() -> None:
    """The decoder decodes against the state the server runs when the restore starts
    (store_reuse): restoring the archive a server already holds leaves it one copy of each
    allocation and job version, the running state's own objects."""
    state = runs_store().snapshot()
    archive = build_archive(dump_snapshot(state), index=state.index, term=1)
    fsm = FSM(StateStore(), entry_kinds())
    _apply([fsm], archive)
    before = fsm.store.snapshot()
    allocs, jobs = dict(before.table("allocs")), dict(before.table("jobs"))
    assert len(allocs) == 36 and len(jobs) == 3
    results = _apply([fsm], archive, rid="again", first_index=1000)
    assert isinstance(results[0], RestoreResult) and results[0].done
    after = fsm.store.snapshot()
    assert all(after.table("allocs")[k] is row for k, row in allocs.items())
    assert all(after.table("jobs")[k] is job for k, job in jobs.items())
    assert dict(after.table("allocs")) == dict(state.table("allocs"))
