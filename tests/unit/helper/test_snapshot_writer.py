"""nomadd/helper/snapshot_writer.py: the archive written in one pass into a file."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from nomadd.helper import snapshot_writer
from nomadd.helper.snapshot_archive import SnapshotError, read_archive, read_archive_stream, write_archive
from nomadd.helper.snapshot_writer import write_archive_into

NOW = 1_700_000_000.5


def _state(n: int) -> list[bytes]:
    """Pieces of a dump-like byte stream (compressible, with random parts), ``n`` of them."""
    return [os.urandom(64).hex().encode() * 50 + str(i).encode() * 300 for i in range(n)]


def _written(
    tmp_path: Path, pieces: list[bytes], after_each: Callable[[int], object] = lambda fd: None
) -> tuple[bytes, snapshot_writer.WrittenArchive]:
    path = tmp_path / "a.snap"
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    try:

        def write_state(sink: Callable[[bytes], object]) -> None:
            for p in pieces:
                sink(p)
                after_each(fd)

        out = write_archive_into(fd, write_state, index=42, term=3, now=NOW)
    finally:
        os.close(fd)
    return path.read_bytes(), out


@pytest.mark.parametrize("pieces", [0, 1, 700])
def test_the_archive_holds_the_tar_write_archive_makes(tmp_path: Path, pieces: int) -> None:
    """Decompressed, the one-pass file is byte for byte the tar of write_archive (same dump,
    same time), and every reader takes it: checksums, sizes and members hold."""
    state = _state(pieces)
    whole = b"".join(state)
    archive, out = _written(tmp_path, state)
    ref = io.BytesIO()
    sha = hashlib.sha256(whole).hexdigest()
    write_archive(ref, io.BytesIO(whole), size=len(whole), sha256=sha, index=42, term=3, now=NOW)
    assert gzip.decompress(archive) == gzip.decompress(ref.getvalue())
    assert (out.size, out.sha256) == (len(archive), hashlib.sha256(archive).hexdigest())
    assert (out.state_size, out.state_sha256) == (len(whole), sha)
    meta, got = read_archive(archive)
    assert got == whole and (meta.index, meta.term, meta.size) == (42, 3, len(whole))
    assert read_archive_stream(io.BytesIO(archive))[0].sha256 == sha


def test_the_state_is_compressed_while_it_is_encoded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The encoder never waits for the whole dump: pieces are compressed as they come, and no
    more than the queue's worth is held back (the thread is fed while the state is written)."""
    monkeypatch.setattr(snapshot_writer, "PIECE_BYTES", 4096)
    seen: list[int] = []
    state = _state(400)
    archive, _ = _written(tmp_path, state, lambda fd: seen.append(os.fstat(fd).st_size))
    assert seen[len(seen) // 2] > snapshot_writer.HEAD_MEMBER_BYTES  # written before the end
    assert read_archive(archive)[1] == b"".join(state)


def test_a_failing_write_is_raised_and_the_thread_ends(tmp_path: Path) -> None:
    fd = os.open(tmp_path / "ro", os.O_CREAT | os.O_RDONLY, 0o600)  # pwrite: EBADF

    def write_state(sink: object) -> None:
        for p in _state(300):
            sink(p)  # type: ignore[operator]

    try:
        with pytest.raises(OSError, match="Bad file descriptor"):
            write_archive_into(fd, write_state, index=1, term=1)
    finally:
        os.close(fd)
    assert not [t for t in threading.enumerate() if t.name == "snapshot-deflate"]


def test_a_truncated_one_pass_archive_is_refused(tmp_path: Path) -> None:
    archive, _ = _written(tmp_path, _state(50))
    for cut in (len(archive) // 2, snapshot_writer.HEAD_MEMBER_BYTES, snapshot_writer.HEAD_MEMBER_BYTES + 20):
        with pytest.raises(SnapshotError):
            read_archive(archive[:cut])


def _with_member(tmp_path: Path, whole: bytes) -> tuple[int, int, int]:
    """A file with ``whole`` as a gzip member between two others (as a Raft dump holds the
    store's), opened: its fd, the member's offset and length."""
    before, member = gzip.compress(b"head" * 100, mtime=0), gzip.compress(whole, compresslevel=1, mtime=0)
    path = tmp_path / "src.dump"
    path.write_bytes(before + member + gzip.compress(b"end", mtime=0))
    return os.open(path, os.O_RDONLY), len(before), len(member)


@pytest.mark.parametrize("pieces", [0, 700])
def test_an_archive_from_a_gzip_member_holds_the_same_tar(tmp_path: Path, pieces: int) -> None:
    """A state dump that is a gzip member already (a Raft full dump's store) is copied as it
    is: decompressed, the archive is the tar write_archive makes, and every reader takes it."""
    whole = b"".join(_state(pieces))
    sha = hashlib.sha256(whole).hexdigest()
    src, offset, length = _with_member(tmp_path, whole)
    fd = os.open(tmp_path / "b.snap", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        out = snapshot_writer.write_archive_from_member(
            fd, src, offset, length, state_size=len(whole), state_sha256=sha, index=42, term=3, now=NOW
        )
    finally:
        os.close(fd)
        os.close(src)
    archive = (tmp_path / "b.snap").read_bytes()
    ref = io.BytesIO()
    write_archive(ref, io.BytesIO(whole), size=len(whole), sha256=sha, index=42, term=3, now=NOW)
    assert gzip.decompress(archive) == gzip.decompress(ref.getvalue())
    assert (out.size, out.sha256, out.state_size) == (
        len(archive),
        hashlib.sha256(archive).hexdigest(),
        len(whole),
    )
    meta, got = read_archive(archive)
    assert got == whole and (meta.index, meta.term) == (42, 3)
    assert read_archive_stream(io.BytesIO(archive))[0].sha256 == sha


@pytest.mark.parametrize("wrong", ["offset", "length", "size"])
def test_an_archive_from_a_misplaced_member_is_not_made(tmp_path: Path, wrong: str) -> None:
    """A member not where it was said to be, or not of the state's size, is an OSError (the
    save then encodes the store itself), never an archive a restore would refuse later."""
    whole = b"".join(_state(50))
    src, offset, length = _with_member(tmp_path, whole)
    fd = os.open(tmp_path / "b.snap", os.O_CREAT | os.O_RDWR, 0o600)
    size = len(whole)
    if wrong == "offset":
        offset += 1
    elif wrong == "length":
        length -= 3
    else:
        size += 1
    try:
        with pytest.raises(OSError, match="gzip member"):
            snapshot_writer.write_archive_from_member(
                fd, src, offset, length, state_size=size, state_sha256="0" * 64, index=1, term=1, now=NOW
            )
    finally:
        os.close(fd)
        os.close(src)
