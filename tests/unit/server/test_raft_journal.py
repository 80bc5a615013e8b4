"""raft.journal.DurableJournal: framing, torn tails, fsync batching, meta; raft.compat's check."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from nomadd.server.raft import compat
from nomadd.server.raft import journal as journal_mod
from nomadd.server.raft.journal import HEADER, DurableJournal
from nomadd.structs.errors import RaftStorageError

ENTRIES = [(b"\x00", 1, 1), *((f"command-{i}".encode() * (i + 1), i, 1 + i // 4) for i in range(2, 9))]


def _write(path: Path, entries: list[tuple[bytes, int, int]] = ENTRIES) -> list[int]:
    """A synced journal holding ``entries``; returns the file size after each entry."""
    j = DurableJournal(str(path))
    ends = []
    for e in entries:
        j.add(*e)
        j.sync()
        ends.append(os.path.getsize(path))
    j.setCurrentTerm(3, "127.0.0.1:1")
    j._destroy()
    return ends


def _reopen(path: Path) -> list[tuple[bytes, int, int]]:
    j = DurableJournal(str(path))
    try:
        return list(j[:])
    finally:
        j._destroy()


def test_entries_and_meta_survive_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "raft.journal"
    _write(path)
    j = DurableJournal(str(path))
    try:
        assert list(j[:]) == ENTRIES
        assert len(j) == len(ENTRIES) and j[-1] == ENTRIES[-1]
        assert (j.getCurrentTerm(), j.getVotedForNodeId()) == (3, "127.0.0.1:1")
        j.setRaftCommitIndex(5)
        j.onOneSecondTimer()
    finally:
        j._destroy()
    assert json.loads((tmp_path / "raft.journal.meta").read_text())["raftCommitIndex"] == 5


@pytest.mark.parametrize("filler", ["cut", "zeros", "garbage"])
def test_a_torn_tail_recovers_to_the_last_whole_entry_at_every_byte(
    tmp_path: Path, filler: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Power cut mid-write: the file ends anywhere inside the last entries (cut short, or its
    unwritten part reads as zeros or as old garbage). Opening never fails and keeps exactly the
    entries that are whole; the file is cut back so new entries follow them."""
    src = tmp_path / "full.journal"
    ends = _write(src)
    data = src.read_bytes()
    meta = (tmp_path / "full.journal.meta").read_bytes()
    start = ends[-4]  # every offset of the last three entries
    for cut in range(start, len(data) + 1):
        path = tmp_path / f"{filler}-{cut}.journal"
        tail = b""
        if filler == "zeros":
            tail = bytes(len(data) - cut)
        elif filler == "garbage":
            tail = bytes((i * 37 + 11) % 256 for i in range(len(data) - cut))
        path.write_bytes(data[:cut] + tail)
        (tmp_path / f"{filler}-{cut}.journal.meta").write_bytes(meta)
        whole = sum(1 for end in ends if end <= cut)
        with caplog.at_level(logging.WARNING):
            got = _reopen(path)
        assert got == ENTRIES[:whole], cut
        assert os.path.getsize(path) == (ends[whole - 1] if whole else len(HEADER)), cut
        # the cut journal takes new entries after the whole ones
        j = DurableJournal(str(path))
        j.add(b"next", ENTRIES[whole - 1][1] + 1, 9)
        j._destroy()
        assert _reopen(path) == [*ENTRIES[:whole], (b"next", ENTRIES[whole - 1][1] + 1, 9)], cut
    assert "torn" in caplog.text


@pytest.mark.parametrize("content", [b"", HEADER[:5]])
def test_an_empty_or_torn_header_journal_starts_empty(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "raft.journal"
    path.write_bytes(content)
    assert _reopen(path) == []
    assert path.read_bytes() == HEADER


def test_a_file_that_is_not_a_journal_is_named_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "raft.journal"
    path.write_bytes(b"hello, this is not a journal at all")
    with pytest.raises(RaftStorageError, match=f"{path}: not a nomadd raft journal"):
        DurableJournal(str(path))
    path.write_bytes(HEADER[:-4] + b"\x07\x00\x00\x00")
    with pytest.raises(RaftStorageError, match="format 7 is not supported"):
        DurableJournal(str(path))
    path.write_bytes(HEADER)
    (tmp_path / "raft.journal.meta").write_bytes(b"{torn")
    with pytest.raises(RaftStorageError, match=r"raft\.journal\.meta: raft meta is not valid JSON"):
        DurableJournal(str(path))


def test_deletions_persist(tmp_path: Path) -> None:
    path = tmp_path / "raft.journal"
    _write(path)
    j = DurableJournal(str(path))
    j.deleteEntriesFrom(5)  # a conflicting tail
    j.add(b"new", 6, 7)
    j.sync()
    j._destroy()
    assert _reopen(path) == [*ENTRIES[:5], (b"new", 6, 7)]
    j = DurableJournal(str(path))
    j.add(b"unsynced", 7, 7)
    j.deleteEntriesFrom(6)  # drops the buffered entry only
    j.deleteEntriesTo(2)  # compaction rewrites the file
    j._destroy()
    assert _reopen(path) == [*ENTRIES[2:5], (b"new", 6, 7)]
    j = DurableJournal(str(path))
    j.clear()
    j.add(*ENTRIES[3])
    j.add(*ENTRIES[4])
    j._destroy()
    assert _reopen(path) == ENTRIES[3:5]


def test_one_fdatasync_covers_a_burst_and_the_switch_turns_it_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = os.fdatasync
    monkeypatch.setattr(journal_mod.os, "fdatasync", lambda fd: (calls.append(fd), real(fd))[1])
    j = DurableJournal(str(tmp_path / "a.journal"))
    calls.clear()
    for i in range(1, 201):
        j.add(b"x" * 100, i, 1)
    assert j.dirty and not calls
    j.sync()
    assert len(calls) == 1 and not j.dirty
    j.sync()
    assert len(calls) == 1
    j._destroy()
    monkeypatch.setenv(journal_mod.FSYNC_ENV, "0")
    calls.clear()
    j = DurableJournal(str(tmp_path / "b.journal"))
    j.add(b"x", 1, 1)
    j.sync()
    j._destroy()
    assert calls == []
    assert _reopen(tmp_path / "b.journal") == [(b"x", 1, 1)]  # written all the same


def test_a_pysyncobj_journal_is_converted(tmp_path: Path) -> None:
    from pysyncobj.journal import FileJournal

    path = tmp_path / "raft.journal"
    old = FileJournal(str(path))
    for e in ENTRIES:
        old.add(*e)
    old.setCurrentTerm(4, "127.0.0.1:2")
    old._destroy()
    j = DurableJournal(str(path))
    try:
        assert list(j[:]) == ENTRIES
        assert (j.getCurrentTerm(), j.getVotedForNodeId()) == (4, "127.0.0.1:2")
    finally:
        j._destroy()
    assert path.read_bytes().startswith(HEADER)


def test_compat_check_names_a_missing_pysyncobj_attribute(monkeypatch: pytest.MonkeyPatch) -> None:
    compat.check()  # the pinned version has everything
    monkeypatch.delattr(compat.SyncObj, "_getLeader")
    with pytest.raises(compat.PysyncobjMismatchError) as err:
        compat.check()
    msg = str(err.value)
    assert "pysyncobj.syncobj.SyncObj._getLeader" in msg
    assert f"pysyncobj=={compat.PYSYNCOBJ_VERSION}" in msg
    assert isinstance(err.value, ImportError)


def test_compat_check_finds_instance_attributes_in_the_constructor() -> None:
    class Old:
        def __init__(self) -> None:
            self.__log: list[int] = []

    required = ((Old, "_Old__log", "init"), (Old, "_Old__gone", "init"), (Old, "method", "attr"))
    assert compat.missing(required) == [
        f"{Old.__module__}.{Old.__qualname__}._Old__gone",
        f"{Old.__module__}.{Old.__qualname__}.method",
    ]


def test_a_commit_index_past_the_journal_end_is_clamped(tmp_path: Path) -> None:
    path = tmp_path / "raft.journal"
    _write(path)
    (tmp_path / "raft.journal.meta").write_text(json.dumps({"raftCommitIndex": 99, "currentTerm": 3}))
    j = DurableJournal(str(path))
    try:
        assert j.getRaftCommitIndex() == ENTRIES[-1][1]
        assert j.getCurrentTerm() == 3
    finally:
        j._destroy()


def test_compat_check_names_a_journal_method_we_do_not_implement() -> None:
    assert all(callable(getattr(DurableJournal, name)) for name in compat.JOURNAL_METHODS)

    class NewerJournal(compat.Journal):  # type: ignore[misc]
        def flush(self) -> None: ...

    lacking = compat.missing((), journal=NewerJournal)
    assert len(lacking) == 1 and lacking[0].endswith(
        "NewerJournal.flush (a journal method nomadd's DurableJournal lacks)"
    )


def test_old_commands_leave_memory_and_are_read_back_from_the_file(tmp_path: Path) -> None:
    """Past ``hot_limit`` bytes the oldest written commands are dropped from memory; every
    read (one entry, a slice, a compaction's rewrite, a reopen) still returns them whole."""
    path = tmp_path / "raft.journal"
    j = DurableJournal(str(path))
    j.hot_limit = 100
    entries = [(f"cmd-{i}-".encode() * 5, i, 1) for i in range(1, 41)]  # 40 bytes each
    for e in entries:
        j.add(*e)
    assert j._cold == 0  # not written yet: nothing can leave memory
    j.sync()
    assert j._cold == len(entries) - 2 and j._hot_bytes <= 100
    assert [j[i] for i in range(len(entries))] == entries
    assert j[:] == entries and j[5:9] == entries[5:9] and j[-1] == entries[-1]
    j.deleteEntriesFrom(30)  # a follower's log cut back: the hot tail goes first
    assert j[:] == entries[:30]
    j.add(*entries[30])
    j.sync()
    j.deleteEntriesTo(10)  # compaction rewrites the file from entries read back
    assert j[:] == entries[10:31]
    j._destroy()
    again = DurableJournal(str(path))
    again.hot_limit = 100
    assert again[:] == entries[10:31]
    again._destroy()


def test_a_cold_head_is_read_from_the_file_once_and_never_served_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pysyncobj reads ``log[0][1]`` several times per entry: a cold head is read back once, and
    an entry cut and written again at the same place is read anew (never the old command)."""
    j = DurableJournal(str(tmp_path / "j"))
    j.hot_limit = 100
    for command, idx, term in ENTRIES:
        j.add(command, idx, term)
        j.sync()
    reads: list[int] = []
    real = os.pread
    monkeypatch.setattr(journal_mod.os, "pread", lambda fd, n, off: reads.append(off) or real(fd, n, off))
    for _ in range(5):
        assert j[0] == ENTRIES[0]
    assert len(reads) == 2  # header and body, once
    # a conflict cuts the log back to its second entry; a new entry of another term takes its place
    j.deleteEntriesFrom(1)
    j.add(b"the other term's command" * 10, 2, 9)
    j.sync()
    j.add(b"x" * 200, 3, 9)  # pushes the new entry 2 out of memory
    j.sync()
    assert j._entries[1][0] is None  # cold: read from the file
    assert j[1] == (b"the other term's command" * 10, 2, 9)
    assert j[0] == ENTRIES[0]  # the cold head, read back (and kept) again
    j.deleteEntriesFrom(0)  # cut to the header: a new first entry at the same place
    j.add(b"first again", 1, 9)
    j.add(b"y" * 200, 2, 9)
    j.sync()
    assert j._entries[0][0] is None
    assert j[0] == (b"first again", 1, 9)
    j._destroy()


def test_loading_and_compacting_a_large_journal_keep_memory_flat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A restart maps the file and keeps only the newest ``HOT_BYTES`` of commands; compaction
    copies the kept records as bytes. Neither holds the log (here 24 MB) in memory."""
    import tracemalloc

    monkeypatch.setattr(journal_mod, "HOT_BYTES", 1 << 20)
    path = tmp_path / "raft.journal"
    entries = [(bytes([i % 251]) * 100_000 + str(i).encode(), i, 1 + i // 100) for i in range(1, 241)]
    j = DurableJournal(str(path))
    for e in entries:
        j.add(*e)
        j.sync()
    j._destroy()
    tracemalloc.start()
    try:
        j = DurableJournal(str(path))
        _, load_peak = tracemalloc.get_traced_memory()
        assert j._hot_bytes <= 1 << 20 and j._entries[-1][0] == entries[-1][0]
        tracemalloc.reset_peak()
        j.deleteEntriesTo(120)
        _, compact_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert load_peak < 4 << 20, f"loading held {load_peak:,} bytes"
    assert compact_peak < 8 << 20, f"compacting held {compact_peak:,} bytes"
    assert [j[i] for i in (0, 1, 60, 119)] == [entries[i] for i in (120, 121, 180, 239)]
    j.add(b"after", 241, 3)
    j._destroy()
    assert _reopen(path) == [*entries[120:], (b"after", 241, 3)]
