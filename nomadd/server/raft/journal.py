"""The Raft log on disk: our own journal behind pysyncobj's ``Journal`` interface, made durable.

pysyncobj's ``FileJournal`` writes through an mmap it never flushes and its meta file (term,
vote) through a rename it never fsyncs (a power cut leaves empty files behind and pysyncobj then
fails to start; docs/contributing/raft.md, "Durability"). Raft's rule is that a server
acknowledges an entry, and a leader counts its own entry toward a commit, only once the entry is
durable, and that ``currentTerm``/``votedFor`` are durable before any message that depends on
them. So:

* entries are framed ``<length u32><crc32 u32><index u64><term u64><command>``; :meth:`add`
  only buffers them, :meth:`sync` writes the buffer with one ``write`` and one ``fdatasync``
  (the glue calls it once per tick-thread poll round, so one fsync covers a burst, and holds
  back acknowledgements until then);
* a torn or empty tail (power cut mid-write) is found by length and checksum at start and cut
  back to the last whole entry, with a warning; a file that is not a journal at all raises
  :class:`RaftStorageError` naming it and the reason (the agent exits 1);
* term and vote (and the commit index, once a second) go to ``<journal>.meta`` through
  :func:`durable_replace`: temp file fsync'ed, renamed, directory fsync'ed;
* ``deleteEntriesTo`` (compaction, after the dump is durable) rewrites the file the same way.

:data:`FSYNC_ENV` set to ``0`` turns every fsync off. It is a test-only switch (the power-cut
test shows it loses acknowledged writes, the bench prints throughput both ways); a warning is
logged when it is on.

A journal written by pysyncobj's ``FileJournal`` (header ``PYSYNCOBJ``) is read once and
rewritten in this format.
"""

from __future__ import annotations

import contextlib
import json
import logging
import mmap
import os
import struct
import zlib
from pathlib import Path
from typing import Any

from pysyncobj.journal import Journal

from nomadd.structs.errors import RaftStorageError

__all__ = [
    "FSYNC_ENV",
    "HEADER",
    "DurableJournal",
    "durable_replace",
    "fsync_dir",
    "fsync_enabled",
    "write_durably",
]

logger = logging.getLogger("nomadd.server.raft")

# Commands held in memory, newest first; older entries' commands are read back from the file when
# pysyncobj asks for them (a follower far behind, a compaction). With group commit an entry holds
# many placements: at a million allocations the log since the last dump held 586 MB in memory.
HOT_BYTES = 64 * 1024 * 1024
_COPY_CHUNK = 1024 * 1024  # compaction copies the kept records in pieces of this size
FSYNC_ENV = "NOMADD_TEST_RAFT_FSYNC"  # "0": test only, no fsync anywhere in raft storage
MAGIC = b"NOMADDRJ"
FORMAT = 1
HEADER = MAGIC + struct.pack("<I", FORMAT)
_REC = struct.Struct("<II")  # length of the body, crc32 of the body
_BODY = struct.Struct("<QQ")  # index, term; the command follows
_LEGACY_MAGIC = b"PYSYNCOBJ"
_LEGACY_FIRST_RECORD = 24 + 8 + 4 + 4


def fsync_enabled() -> bool:
    return os.environ.get(FSYNC_ENV, "1") != "0"


def fsync_dir(path: str | Path) -> None:
    """fsync a directory, so the names created or renamed in it survive a power cut."""
    if not fsync_enabled():
        return
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def durable_replace(src: str | Path, dst: str | Path) -> None:
    """``os.replace`` with ``src``'s data fsync'ed before and the directory fsync'ed after."""
    if fsync_enabled():
        fd = os.open(src, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    os.replace(src, dst)
    fsync_dir(os.path.dirname(os.path.abspath(dst)))


def write_durably(path: str | Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` (temp file, fsync, rename, directory fsync)."""
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    durable_replace(tmp, path)


def _write_at(fd: int, data: bytes, offset: int) -> None:
    done = 0
    while done < len(data):
        done += os.pwrite(fd, data[done:] if done else data, offset + done)


def _record(command: bytes, idx: int, term: int) -> bytes:
    body = _BODY.pack(idx, term) + command
    return _REC.pack(len(body), zlib.crc32(body)) + body


def _parse(
    data: bytes | memoryview, start: int, hot_from: int = 0
) -> tuple[list[tuple[bytes | None, int, int]], list[int], int, str]:
    """Whole records from ``start``: (entries, their offsets, end of the last whole one, why
    parsing stopped before the end of ``data`` or ""). Every record's checksum is checked; only
    the commands of records at or after ``hot_from`` are copied out (the others are None: read
    back from the file when asked for)."""
    entries: list[tuple[bytes | None, int, int]] = []
    offsets: list[int] = []
    off, size = start, len(data)
    while off < size:
        if size - off < _REC.size:
            return entries, offsets, off, "partial record header"
        length, crc = _REC.unpack_from(data, off)
        end = off + _REC.size + length
        if length < _BODY.size or end > size:
            return entries, offsets, off, f"record length {length} past the end"
        body = data[off + _REC.size : end]
        if zlib.crc32(body) != crc:
            return entries, offsets, off, "checksum mismatch"
        idx, term = _BODY.unpack_from(body)
        if entries and idx != entries[-1][1] + 1:
            return entries, offsets, off, f"index {idx} does not follow {entries[-1][1]}"
        entries.append((bytes(body[_BODY.size :]) if off >= hot_from else None, idx, term))
        offsets.append(off)
        off = end
    return entries, offsets, off, ""


def _parse_legacy(data: bytes) -> list[tuple[bytes, int, int]]:
    """Entries of a pysyncobj ``FileJournal`` file (``<size><index><term><command><size>``)."""
    (last,) = struct.unpack_from("<I", data, _LEGACY_FIRST_RECORD - 4)
    off, out = _LEGACY_FIRST_RECORD, []
    while off < min(last, len(data)):
        (size,) = struct.unpack_from("<I", data, off)
        idx, term = struct.unpack_from("<QQ", data, off + 4)
        out.append((bytes(data[off + 20 : off + 4 + size]), idx, term))
        off += size + 8
    return out


class DurableJournal(Journal):  # type: ignore[misc]
    """pysyncobj's journal interface on one append-only file plus a meta file (see module doc)."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._meta_path = path + ".meta"
        self._fsync = fsync_enabled()
        self.leader = False  # set by the node: a leader syncs before it moves the commit index
        # (command, index, term); the command is None for the first ``_cold`` entries, whose
        # commands are only in the file (see HOT_BYTES)
        self._entries: list[tuple[bytes | None, int, int]] = []
        self._offsets: list[int] = []
        self._cold = 0
        self._hot_bytes = 0  # bytes of the commands held in memory
        # (offset, index, command) of the cold entry read back last: pysyncobj reads the first
        # entry (``log[0][1]``, for its index) several times per entry it sends or applies, and
        # once the log's head is cold each read was a pread and a crc32 of a whole command
        # (127 us for 300 KB); dropped whenever the file is cut or rewritten
        self._last_read: tuple[int, int, bytes] | None = None
        self.hot_limit = HOT_BYTES
        self._pending = bytearray()  # records added since the last sync, not yet written
        self._written = len(HEADER)  # file size covered by whole written records
        self._unsynced = False  # written or truncated since the last fdatasync
        self.synced_index = 0  # raft index of the last entry known durable (0: none yet)
        self._meta: dict[str, Any] = {}
        self._meta_saved = True
        existed = os.path.exists(path)
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            self._load(existed)
        except BaseException:
            os.close(self._fd)
            raise
        if not existed:
            fsync_dir(os.path.dirname(os.path.abspath(path)))
        if not self._fsync:
            logger.warning("raft fsync is off (test-only switch %s=0): power loss loses writes", FSYNC_ENV)

    # ---- loading ------------------------------------------------------------------------
    def _read_all(self) -> bytes:
        chunks = []
        os.lseek(self._fd, 0, os.SEEK_SET)
        while chunk := os.read(self._fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)

    def _load(self, existed: bool) -> None:
        """Read the file: mapped, not read into memory (at a million allocations the log since
        the last dump held over 500 MB, and reading it whole, then copying every command out,
        doubled a restarting server's memory and left its heap fragmented); every record's
        checksum is checked, and only the newest :data:`HOT_BYTES` of commands are kept."""
        mapped = None
        try:
            if os.fstat(self._fd).st_size >= len(HEADER):
                with contextlib.suppress(OSError, ValueError):  # a file system without mmap: read it
                    mapped = mmap.mmap(self._fd, 0, access=mmap.ACCESS_READ)
            if mapped is None:
                self._load_bytes(self._read_all(), existed)
                return
        except OSError as err:
            raise RaftStorageError(f"{self._path}: cannot read raft journal: {err.strerror}") from err
        view = memoryview(mapped)
        try:
            self._load_bytes(view, existed)
        finally:
            view.release()
            mapped.close()

    def _load_bytes(self, data: bytes | memoryview, existed: bool) -> None:
        head = bytes(data[: max(len(HEADER), len(_LEGACY_MAGIC))])
        if head.startswith(_LEGACY_MAGIC):
            self._load_legacy(bytes(data))
            return
        if len(data) < len(HEADER) and HEADER.startswith(head):
            if existed:
                logger.warning("raft journal is empty or its header torn, starting empty path=%s", self._path)
            self._truncate(0)
            self._pending += HEADER
            self.sync()
            self._meta = self._read_meta()
            return
        if not head.startswith(MAGIC):
            raise RaftStorageError(f"{self._path}: not a nomadd raft journal (unknown header {head[:16]!r})")
        if head[: len(HEADER)] != HEADER:
            (fmt,) = struct.unpack_from("<I", head, len(MAGIC))
            raise RaftStorageError(
                f"{self._path}: raft journal format {fmt} is not supported (this is {FORMAT})"
            )
        entries, self._offsets, end, why = _parse(data, len(HEADER), hot_from=len(data) - self.hot_limit)
        self._entries = entries
        self._cold = next((i for i, (c, _, _) in enumerate(entries) if c is not None), len(entries))
        self._hot_bytes = sum(len(c) for c, _, _ in entries[self._cold :] if c is not None)
        self._written = end
        if end < len(data):
            last = self._entries[-1][1] if self._entries else 0
            logger.warning(
                "raft journal tail torn, cut back to the last whole entry path=%s reason=%r "
                "offset=%d dropped_bytes=%d last_index=%d",
                self._path,
                why,
                end,
                len(data) - end,
                last,
            )
            self._truncate(end)
            self._unsynced = True
            self.sync()
        self._spill()
        self._meta = self._read_meta()

    def _load_legacy(self, data: bytes) -> None:
        try:
            entries = _parse_legacy(data)
            from pysyncobj.pickle import loads

            with open(self._meta_path, "rb") as f:
                meta = loads(f.read())
        except FileNotFoundError:
            meta = {}
        except (struct.error, ValueError, EOFError, OSError) as err:
            raise RaftStorageError(f"{self._path}: cannot read pysyncobj journal: {err}") from err
        self._meta = {k: meta[k] for k in ("currentTerm", "votedForNodeId", "raftCommitIndex") if k in meta}
        logger.info(
            "raft journal converted from pysyncobj's format path=%s entries=%d", self._path, len(entries)
        )
        self._rewrite(entries)
        self._store_meta()

    def _read_meta(self) -> dict[str, Any]:
        try:
            with open(self._meta_path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            return {}
        except OSError as err:
            raise RaftStorageError(f"{self._meta_path}: cannot read raft meta: {err.strerror}") from err
        try:
            meta = json.loads(raw)
            if not isinstance(meta, dict):
                raise ValueError("not an object")
        except ValueError as err:
            raise RaftStorageError(f"{self._meta_path}: raft meta is not valid JSON: {err}") from err
        return meta

    # ---- pysyncobj's Journal interface ----------------------------------------------------
    def add(self, command: bytes, idx: int, term: int) -> None:
        command = bytes(command)
        self._offsets.append(self._written + len(self._pending))
        self._entries.append((command, idx, term))
        self._hot_bytes += len(command)
        self._pending += _record(command, idx, term)

    def clear(self) -> None:
        self._entries, self._offsets = [], []
        self._cold = self._hot_bytes = 0
        self._pending.clear()
        self._truncate(len(HEADER))

    def deleteEntriesFrom(self, entryFrom: int) -> None:
        if entryFrom >= len(self._entries):
            return
        off = self._offsets[entryFrom]
        for command, _, _ in self._entries[max(entryFrom, self._cold) :]:
            self._hot_bytes -= len(command or b"")
        self._cold = min(self._cold, entryFrom)
        del self._entries[entryFrom:]
        del self._offsets[entryFrom:]
        if off >= self._written:
            del self._pending[off - self._written :]
        else:
            self._pending.clear()
            self._truncate(off)

    def deleteEntriesTo(self, entryTo: int) -> None:
        """Compaction (the dump before ``entryTo`` is durable): a new file holding the records
        from ``entryTo`` on, copied as bytes (a record carries its index and term), so no
        command passes through Python and memory stays flat whatever the log's size (a million
        allocations left hundreds of MB behind a dump); durably swapped in, as :meth:`_rewrite`."""
        self.sync()  # every record whole in the file
        count = len(self._entries)
        entryTo = max(0, min(entryTo, count))
        base = self._offsets[entryTo] if entryTo < count else self._written
        self._last_read = None
        tmp = self._path + ".tmp"
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            _write_at(fd, HEADER, 0)
            done = 0
            while done < self._written - base:
                chunk = os.pread(self._fd, min(_COPY_CHUNK, self._written - base - done), base + done)
                if not chunk:
                    raise RaftStorageError(
                        f"{self._path}: raft journal ended at {base + done} while compacting"
                    )
                _write_at(fd, chunk, len(HEADER) + done)
                done += len(chunk)
            durable_replace(tmp, self._path)
        except BaseException:
            os.close(fd)
            raise
        os.close(self._fd)
        self._fd = fd
        shift = base - len(HEADER)
        del self._entries[:entryTo]
        self._offsets = [o - shift for o in self._offsets[entryTo:]]
        self._cold = max(0, self._cold - entryTo)
        self._hot_bytes = sum(len(c) for c, _, _ in self._entries[self._cold :] if c is not None)
        self._written -= shift
        self._unsynced = False

    def __getitem__(self, item: Any) -> Any:
        if isinstance(item, slice):
            start = item.indices(len(self._entries))[0]
            if start >= self._cold and (item.step or 1) > 0:
                return self._entries[item]
            return [self._whole(i) for i in range(*item.indices(len(self._entries)))]
        return self._whole(item)

    def _whole(self, i: int) -> tuple[bytes, int, int]:
        command, idx, term = self._entries[i]
        if command is None:
            off, last = self._offsets[i], self._last_read
            if last is not None and last[0] == off and last[1] == idx:
                command = last[2]
            else:
                command = self._read_command(off, idx)
                self._last_read = (off, idx, command)
        return command, idx, term

    def _read_command(self, off: int, idx: int) -> bytes:
        """An entry's command from the file (it was written whole and synced before it went cold)."""
        head = os.pread(self._fd, _REC.size, off)
        length, crc = _REC.unpack(head)
        body = os.pread(self._fd, length, off + _REC.size)
        if len(body) != length or zlib.crc32(body) != crc or _BODY.unpack_from(body)[0] != idx:
            raise RaftStorageError(f"{self._path}: raft journal entry {idx} at offset {off} unreadable")
        return bytes(body[_BODY.size :])

    def _spill(self) -> None:
        """Drop the oldest written commands from memory until at most ``hot_limit`` bytes remain."""
        entries, offsets, written = self._entries, self._offsets, self._written
        limit = self.hot_limit
        while self._hot_bytes > limit and self._cold < len(entries) and offsets[self._cold] < written:
            command, idx, term = entries[self._cold]
            self._hot_bytes -= len(command or b"")
            entries[self._cold] = (None, idx, term)
            self._cold += 1

    def __len__(self) -> int:
        return len(self._entries)

    def _destroy(self) -> None:
        if self._fd < 0:
            return
        self.sync()
        if not self._meta_saved:
            self._store_meta()
        os.close(self._fd)
        self._fd = -1

    def setRaftCommitIndex(self, raftCommitIndex: int) -> None:
        if self.leader:
            self.sync()  # never count (and apply, and answer) our own entry before it is durable
        self._meta["raftCommitIndex"] = raftCommitIndex
        self._meta_saved = False

    def getRaftCommitIndex(self) -> int:
        """The stored commit index, never past the last entry (pysyncobj reads it at start)."""
        stored = int(self._meta.get("raftCommitIndex", 1))
        last = self._entries[-1][1] if self._entries else 1
        if stored > last:
            logger.warning(
                "raft commit index past the journal's end, clamped path=%s commit=%d last_index=%d",
                self._path,
                stored,
                last,
            )
            return last
        return stored

    def setCurrentTerm(self, term: int, votedForNodeId: Any) -> None:
        self._meta["currentTerm"] = term
        self._meta["votedForNodeId"] = votedForNodeId
        self._store_meta()  # before pysyncobj sends the vote or request that depends on it

    def getCurrentTerm(self) -> int:
        return int(self._meta.get("currentTerm", 0))

    def getVotedForNodeId(self) -> Any:
        return self._meta.get("votedForNodeId")

    def onOneSecondTimer(self) -> None:
        if not self._meta_saved:
            self._store_meta()

    # ---- durability -----------------------------------------------------------------------
    @property
    def dirty(self) -> bool:
        """Entries added or removed since the last :meth:`sync`."""
        return bool(self._pending) or self._unsynced

    def sync(self) -> None:
        """Write what :meth:`add` buffered and fdatasync: everything added so far is durable."""
        if self._pending:
            data, self._pending = bytes(self._pending), bytearray()
            done = 0
            while done < len(data):
                done += os.pwrite(self._fd, data[done:] if done else data, self._written + done)
            self._written += done
            self._unsynced = True
            self._spill()
        if self._unsynced:
            if self._fsync:
                os.fdatasync(self._fd)
            self._unsynced = False
        self.synced_index = self._entries[-1][1] if self._entries else 0

    def _truncate(self, size: int) -> None:
        self._last_read = None
        os.ftruncate(self._fd, size)
        self._written = size
        self._unsynced = True

    def _rewrite(self, entries: list[tuple[bytes, int, int]]) -> None:
        """Replace the file by one holding ``entries`` (durably), and switch to it."""
        self._last_read = None
        tmp = self._path + ".tmp"
        offsets, blob, off = [], bytearray(HEADER), len(HEADER)
        for command, idx, term in entries:
            offsets.append(off)
            rec = _record(command, idx, term)
            blob += rec
            off += len(rec)
        with open(tmp, "wb") as f:
            f.write(blob)
        fd = os.open(tmp, os.O_RDWR)
        durable_replace(tmp, self._path)
        os.close(self._fd)
        self._fd = fd
        self._entries, self._offsets = list(entries), offsets
        self._cold, self._hot_bytes = 0, sum(len(c) for c, _, _ in entries)
        self._pending.clear()
        self._written, self._unsynced = off, False
        self._spill()

    def _store_meta(self) -> None:
        write_durably(self._meta_path, json.dumps(self._meta).encode())
        self._meta_saved = True
