"""The snapshot archive written in one pass into a file (the format and its reader are
:mod:`nomadd.helper.snapshot_archive`'s): the state dump is compressed into the archive as it
is encoded, never written out whole first, in a file or in memory.

A tar member's size comes before its bytes, and a dump's size is known only once it is
encoded. So the file is two gzip members, which gzip readers read as one stream (RFC 1952
§2.2: Python's ``gzip``, GNU gzip and tar do):

* the head: the tar blocks before the dump's bytes (``meta.json``'s header and its one block of
  data, ``state.bin``'s header), stored (deflate level 0), so its length is known before its
  bytes are: its place at the start of the file is kept, the rest is written after it, and the
  head is written into its place last;
* the rest: the dump's bytes, compressed as the encoder hands them over, then the tar blocks
  that follow them (padding, ``SHA256SUMS``, the end of the archive).

:func:`write_archive_from_member` makes the same archive from a state dump that is a gzip member
already (a Raft full dump holds one: nomadd/server/raft/dump.py), its size and sha256 known: the
member is copied as it is between the head and a last member with the tar blocks after it, so
the state is neither encoded nor compressed again.

Decompressed, the file is byte for byte the tar :func:`~nomadd.helper.snapshot_archive.write_archive`
makes of the same dump at the same time. Checksums, compression and writes run in a thread
(hashlib, zlib and ``os.pwrite`` release the GIL) while the caller encodes; the thread lives only
within :func:`write_archive_into`, which joins it before it returns.
"""

from __future__ import annotations

import hashlib
import os
import queue
import tarfile
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from nomadd.helper.snapshot_archive import member_header, meta_file, sums_file

__all__ = [
    "ARCHIVE_GZIP_LEVEL",
    "PIECE_BYTES",
    "WrittenArchive",
    "write_archive_from_member",
    "write_archive_into",
    "write_member_in_line",
    "write_member_into",
]

ARCHIVE_GZIP_LEVEL = 1  # as write_archive: level 1 is a third of level 6's CPU for a few % more bytes
# handed to the compressing thread at a time. The thread waits up to the switch interval (5 ms)
# for the GIL after each call that released it, while the encoder holds it: with 1 MiB pieces it
# spent more time waiting than compressing (335,000 allocations: 4.9 s for the archive, 3.5 s for
# the encoding alone; with 8 MiB 4.1 s)
PIECE_BYTES = 8 << 20
_QUEUE_PIECES = 3  # pieces waiting for that thread at most: how far the encoder may run ahead
_READ_BYTES = 1 << 20  # the archive read back for its checksum
_BLOCK = tarfile.BLOCKSIZE
_RECORD = tarfile.RECORDSIZE
_HEAD_BYTES = 3 * _BLOCK  # meta.json's header and data block, state.bin's header


def _stored_member(data: bytes) -> bytes:
    """``data`` as one gzip member, stored: its length depends only on ``len(data)``."""
    z = zlib.compressobj(0, zlib.DEFLATED, 31)
    return z.compress(data) + z.flush()


HEAD_MEMBER_BYTES = len(_stored_member(bytes(_HEAD_BYTES)))  # the place kept for the head


def _padding(size: int, unit: int = _BLOCK) -> bytes:
    return bytes(-size % unit)


@dataclass(frozen=True, slots=True)
class WrittenArchive:
    size: int  # bytes of the archive file
    sha256: str  # of the archive file (hex)
    state_size: int  # bytes of the dump (state.bin)
    state_sha256: str


class _Deflater:
    """The dump's bytes hashed, compressed and written from ``offset`` of ``fd`` by a thread:
    :meth:`put` hands it a piece (waiting while :data:`_QUEUE_PIECES` wait), :meth:`join`
    ends it. A failure of the thread (a full disk) is raised by the next :meth:`put` or by
    :meth:`join`; the thread then drops what it is handed until it is joined."""

    def __init__(self, fd: int, offset: int, level: int) -> None:
        self._fd = fd
        self.offset = offset
        self.zip = zlib.compressobj(level, zlib.DEFLATED, 31)
        self.digest = hashlib.sha256()
        self.size = 0
        self._pieces: queue.Queue[bytes | None] = queue.Queue(_QUEUE_PIECES)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="snapshot-deflate", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (piece := self._pieces.get()) is not None:
            if self._error is None:
                try:
                    self.digest.update(piece)
                    self.size += len(piece)
                    self.write(self.zip.compress(piece))
                except BaseException as err:  # raised in the caller's thread (put, join)
                    self._error = err

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.pwrite(self._fd, view, self.offset)
            self.offset += n
            view = view[n:]

    def put(self, piece: bytes) -> None:
        if self._error is not None:
            raise self._error
        self._pieces.put(piece)

    def join(self) -> None:
        self._pieces.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error


def _feed(deflater: _Deflater, write_state: Callable[[Callable[[bytes], object]], object]) -> None:
    """What ``write_state(sink)`` hands to ``sink``, to ``deflater`` in pieces of about
    :data:`PIECE_BYTES`; the thread is joined before this returns."""
    held: list[bytes] = []
    held_bytes = 0

    def sink(data: bytes) -> None:
        nonlocal held_bytes
        held.append(data)
        held_bytes += len(data)
        if held_bytes >= PIECE_BYTES:
            deflater.put(b"".join(held))
            held.clear()
            held_bytes = 0

    try:
        write_state(sink)
        if held:
            deflater.put(b"".join(held))
    finally:
        deflater.join()


def write_member_into(
    fd: int,
    offset: int,
    write_state: Callable[[Callable[[bytes], object]], object],
    level: int = ARCHIVE_GZIP_LEVEL,
) -> tuple[int, int, str]:
    """What ``write_state(sink)`` hands to ``sink``, as one gzip member written into ``fd`` from
    ``offset``, hashed and compressed by a thread while the caller encodes (as the archive's
    state is: a Raft full dump's store, which a save then copies); returns the member's end
    offset and the bytes' size and sha256 (hex)."""
    deflater = _Deflater(fd, offset, level)
    _feed(deflater, write_state)
    deflater.write(deflater.zip.flush())
    return deflater.offset, deflater.size, deflater.digest.hexdigest()


def write_member_in_line(
    fd: int,
    offset: int,
    write_state: Callable[[Callable[[bytes], object]], object],
    level: int = ARCHIVE_GZIP_LEVEL,
) -> tuple[int, int, str]:
    """:func:`write_member_into` in the caller's thread: one core at most (a Raft dump beside
    placements)."""
    z = zlib.compressobj(level, zlib.DEFLATED, 31)
    digest = hashlib.sha256()
    size, pos = 0, offset

    def put(out: bytes) -> None:
        nonlocal pos
        view = memoryview(out)
        while view:
            n = os.pwrite(fd, view, pos)
            pos += n
            view = view[n:]

    def sink(data: bytes) -> None:
        nonlocal size
        digest.update(data)
        size += len(data)
        put(z.compress(data))

    write_state(sink)
    put(z.flush())
    return pos, size, digest.hexdigest()


def write_archive_into(
    fd: int,
    write_state: Callable[[Callable[[bytes], object]], object],
    *,
    index: int,
    term: int,
    now: float | None = None,
    level: int = ARCHIVE_GZIP_LEVEL,
) -> WrittenArchive:
    """The archive of the dump ``write_state(sink)`` hands to ``sink`` piece by piece, taken
    at Raft ``index``/``term``, written into the empty file ``fd`` (its offset is not used).
    ValueError for a dump of 8 GiB or more (its size needs a pax header: not one block)."""
    now = time.time() if now is None else now
    deflater = _Deflater(fd, HEAD_MEMBER_BYTES, level)
    _feed(deflater, write_state)
    size, state_sha = deflater.size, deflater.digest.hexdigest()
    head, tail = _tar_around(size, state_sha, index=index, term=term, now=now)
    deflater.write(deflater.zip.compress(tail) + deflater.zip.flush())
    end = deflater.offset
    stored = _stored_member(head)
    assert len(stored) == HEAD_MEMBER_BYTES  # stored blocks: the length of the bytes decides it
    os.pwrite(fd, stored, 0)
    return WrittenArchive(size=end, sha256=_sha256_of(fd, end), state_size=size, state_sha256=state_sha)


def _tar_around(size: int, state_sha256: str, *, index: int, term: int, now: float) -> tuple[bytes, bytes]:
    """The tar blocks before and after a state dump of ``size`` bytes."""
    meta = meta_file(index=index, term=term, size=size, now=now)
    sums = sums_file(meta, state_sha256)
    head = member_header(0, len(meta), now) + meta + _padding(len(meta)) + member_header(1, size, now)
    if len(head) != _HEAD_BYTES:
        raise ValueError(f"snapshot state of {size} bytes: its archive head is not {_HEAD_BYTES} bytes")
    tail = _padding(size) + member_header(2, len(sums), now) + sums + _padding(len(sums)) + bytes(2 * _BLOCK)
    tail += _padding(_HEAD_BYTES + size + len(tail), _RECORD)  # as tarfile ends an archive
    return head, tail


def _sha256_of(fd: int, end: int) -> str:
    digest = hashlib.sha256()
    pos = 0
    while pos < end:
        piece = os.pread(fd, min(_READ_BYTES, end - pos), pos)
        if not piece:
            raise OSError(f"snapshot archive file ends at {pos} of {end} bytes")
        digest.update(piece)
        pos += len(piece)
    return digest.hexdigest()


def write_archive_from_member(
    fd: int,
    src: int,
    offset: int,
    length: int,
    *,
    state_size: int,
    state_sha256: str,
    index: int,
    term: int,
    now: float | None = None,
) -> WrittenArchive:
    """The archive of a state dump that is the gzip member at ``offset`` (``length`` bytes) of
    the file ``src``, ``state_size`` bytes and ``state_sha256`` uncompressed, written into the
    empty file ``fd``: the member is copied as it is (see the module doc). OSError if ``src``
    ends before the member does or what is there is not a gzip member."""
    now = time.time() if now is None else now
    head, tail = _tar_around(state_size, state_sha256, index=index, term=term, now=now)
    if os.pread(src, 2, offset) != b"\x1f\x8b" or length < 18:
        raise OSError(f"no gzip member at {offset} of the state's file")
    stored = _stored_member(head)
    os.pwrite(fd, stored, 0)
    pos, end = 0, len(stored)
    while pos < length:
        piece = os.pread(src, min(PIECE_BYTES, length - pos), offset + pos)
        if not piece:
            raise OSError(f"the state's file ends {length - pos} bytes before its member")
        pos += len(piece)
        while piece:
            n = os.pwrite(fd, piece, end)
            end += n
            piece = piece[n:]
    if int.from_bytes(os.pread(fd, 4, end - 4), "little") != state_size % (1 << 32):
        raise OSError("the state's gzip member is not of the state's size")
    z = zlib.compressobj(ARCHIVE_GZIP_LEVEL, zlib.DEFLATED, 31)
    last = z.compress(tail) + z.flush()
    os.pwrite(fd, last, end)
    end += len(last)
    sha = _sha256_of(fd, end)
    return WrittenArchive(size=end, sha256=sha, state_size=state_size, state_sha256=state_sha256)
