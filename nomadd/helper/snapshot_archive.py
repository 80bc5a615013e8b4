"""The snapshot archive of ``nomadd operator snapshot save|restore|inspect`` (Nomad's format, ours inside).

An archive is a gzip'ed tar holding, in this order (as Nomad's ``snapshot`` package does):

* ``meta.json``: ``{"Version": 1, "ID", "Index", "Term", "Size", "Created", "NomaddVersion"}``
  (``Version`` is the archive format; ``Index``/``Term`` the Raft position of the state);
* ``state.bin``: the state store's dump (``StateStore.dump``: msgpack of every table);
* ``SHA256SUMS``: ``<sha256 hex>  <name>`` for the two files above.

:func:`read_archive` checks everything a restore relies on (gzip and tar framing, the three
members, both checksums, the format version) and raises :class:`SnapshotError` with the reason: a corrupt or
truncated file is refused before anything changes. It is a helper (no server machinery) because
the CLI reads archives too (``save`` checks what it wrote, ``inspect``, ``restore``).
"""

from __future__ import annotations

import collections
import gzip
import hashlib
import io
import json
import tarfile
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any, Protocol, TypeVar

import msgpack  # type: ignore[import-untyped]

from nomadd import __version__

__all__ = [
    "ARCHIVE_VERSION",
    "ArchivePipe",
    "PipeStopped",
    "Readable",
    "SnapshotError",
    "SnapshotMeta",
    "build_archive",
    "check_archive_file",
    "member_header",
    "meta_file",
    "read_archive",
    "read_archive_file",
    "read_archive_stream",
    "sums_file",
    "table_stats",
    "write_archive",
]

ARCHIVE_VERSION = 1
_META = "meta.json"
_STATE = "state.bin"
_SUMS = "SHA256SUMS"
_MEMBERS = (_META, _STATE, _SUMS)
T = TypeVar("T")


class SnapshotError(ValueError):
    """A snapshot archive that cannot be restored (corrupt, truncated, unknown format).

    Plain ``ValueError`` (this module sits below ``structs``): the server and the HTTP edge turn
    it into a 400 (``ValidationError``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SnapshotMeta:
    id: str
    index: int
    term: int
    size: int  # bytes of state.bin
    created: str  # RFC 3339, UTC
    version: int = ARCHIVE_VERSION
    nomadd_version: str = ""
    sha256: str = ""  # of state.bin

    def to_json(self) -> dict[str, Any]:
        return {
            "Version": self.version,
            "ID": self.id,
            "Index": self.index,
            "Term": self.term,
            "Size": self.size,
            "Created": self.created,
            "NomaddVersion": self.nomadd_version,
        }


def _info(name: str, size: int, mtime: float) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = int(mtime)
    info.mode = 0o600
    return info


def _add(tar: tarfile.TarFile, name: str, data: IO[bytes], size: int, mtime: float) -> None:
    tar.addfile(_info(name, size, mtime), data)


def member_header(member: int, size: int, mtime: float) -> bytes:
    """The tar header :func:`write_archive` writes for member number ``member`` (0: meta.json,
    1: state.bin, 2: SHA256SUMS) of ``size`` bytes: what another writer of the same archive
    writes (:mod:`nomadd.helper.snapshot_writer`)."""
    return _info(_MEMBERS[member], size, mtime).tobuf(tarfile.PAX_FORMAT, tarfile.ENCODING, "surrogateescape")


def meta_file(*, index: int, term: int, size: int, now: float) -> bytes:
    """The bytes of ``meta.json`` for a state dump of ``size`` bytes taken at ``index``/``term``."""
    meta = {
        "Version": ARCHIVE_VERSION,
        "ID": f"{term}-{index}-{int(now * 1000)}",
        "Index": index,
        "Term": term,
        "Size": size,
        "Created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        "NomaddVersion": __version__,
    }
    return json.dumps(meta, indent=2).encode() + b"\n"


def sums_file(meta_bytes: bytes, state_sha256: str) -> bytes:
    """The bytes of ``SHA256SUMS``: the checksums of ``meta.json`` and of the state dump."""
    return f"{hashlib.sha256(meta_bytes).hexdigest()}  {_META}\n{state_sha256}  {_STATE}\n".encode()


def write_archive(
    out: IO[bytes],
    state: IO[bytes],
    *,
    size: int,
    sha256: str,
    index: int,
    term: int,
    now: float | None = None,
) -> None:
    """The archive of one state dump taken at Raft ``index``/``term`` into ``out``; the dump
    is read from ``state`` (``size`` bytes whose sha256 hex is ``sha256``) piece by piece: a
    dump written to a file first is never held whole."""
    now = time.time() if now is None else now
    meta_bytes = meta_file(index=index, term=term, size=size, now=now)
    sums = sums_file(meta_bytes, sha256)
    with (
        gzip.GzipFile(fileobj=out, mode="wb", compresslevel=1, mtime=int(now)) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        _add(tar, _META, io.BytesIO(meta_bytes), len(meta_bytes), now)
        _add(tar, _STATE, state, size, now)
        _add(tar, _SUMS, io.BytesIO(sums), len(sums), now)


def build_archive(state: bytes, *, index: int, term: int, now: float | None = None) -> bytes:
    """The archive bytes of one state dump taken at Raft ``index``/``term``."""
    buf = io.BytesIO()
    digest = hashlib.sha256(state).hexdigest()
    write_archive(buf, io.BytesIO(state), size=len(state), sha256=digest, index=index, term=term, now=now)
    return buf.getvalue()


class Readable(Protocol):
    """A binary file read piece by piece (a file, a ``GzipFile``, an :class:`ArchivePipe`)."""

    def read(self, size: int = -1, /) -> bytes: ...


_READ_BYTES = 1 << 20  # what the stream reader asks for at a time
_SMALL_MEMBER_BYTES = 1 << 20  # meta.json and SHA256SUMS are read whole: a sanity bound


class _Counted:
    """``f`` with the bytes read from it counted (and hashed, with ``hash``)."""

    __slots__ = ("_f", "digest", "size")

    def __init__(self, f: Readable, hashed: bool = False) -> None:
        self._f = f
        self.size = 0
        self.digest = hashlib.sha256() if hashed else None

    def read(self, size: int = -1, /) -> bytes:
        data = self._f.read(size)
        self.size += len(data)
        if self.digest is not None:
            self.digest.update(data)
        return data


class PipeStopped(Exception):
    """:meth:`ArchivePipe.read` gave up: cancelled, or no bytes came for its idle time."""


class ArchivePipe:
    """Bytes handed from one thread (:meth:`feed`, :meth:`close`) to a reader in another
    (:meth:`read`, e.g. :func:`read_archive_stream`), so an archive is checked or decoded as
    it arrives. Pieces are kept by reference, not copied. A reader left without bytes for
    ``idle_s`` stops (:class:`PipeStopped`), and a pipe that stopped takes no more."""

    def __init__(self, idle_s: float | None = None) -> None:
        self._cond = threading.Condition()
        self._pieces: collections.deque[bytes] = collections.deque()
        self._offset = 0  # into the first piece
        self._idle_s = idle_s
        self._closed = False  # no more bytes: the reader gets b"" once it took them all
        self._stopped = ""  # why the reader must stop ("" while it may go on)
        self._waiting = False  # the reader waits for bytes: it took everything fed so far
        self._finished = False

    def feed(self, data: bytes) -> bool:
        """Hand over ``data``; False if the pipe stopped (the reader is gone)."""
        with self._cond:
            if self._stopped:
                return False
            if data:
                self._pieces.append(data)
                self._cond.notify_all()
            return True

    def close(self) -> None:
        """No more bytes: the reader reads to the end, then gets ``b""``."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def cancel(self) -> None:
        """Stop the reader at its next read; the bytes not read are dropped."""
        with self._cond:
            self._stopped = self._stopped or "cancelled"
            self._pieces.clear()
            self._cond.notify_all()

    def finish(self) -> None:
        """The reader is done (called by it, whatever the outcome)."""
        with self._cond:
            self._finished = True
            self._cond.notify_all()

    def wait_drained(self, timeout: float) -> bool:
        """Wait until the reader has taken every byte fed so far and waits for more, or is done."""
        with self._cond:
            return self._cond.wait_for(self._drained, timeout)

    def drained(self) -> bool:
        """Whether the reader has taken every byte fed so far and waits for more, or is done."""
        with self._cond:
            return self._drained()

    def _drained(self) -> bool:
        return self._finished or bool(self._stopped) or (self._waiting and not self._pieces)

    def read(self, size: int = -1, /) -> bytes:
        out: list[bytes] = []
        want = size if size >= 0 else 1 << 62
        with self._cond:
            while want > 0:
                if self._stopped:
                    raise PipeStopped(f"archive pipe {self._stopped}")
                if not self._pieces:
                    if self._closed or out:
                        break
                    self._waiting = True
                    self._cond.notify_all()
                    woken = self._cond.wait(self._idle_s)
                    self._waiting = False
                    if not woken and not self._pieces and not self._closed and not self._stopped:
                        self._stopped = f"idle for {self._idle_s}s"
                    continue
                piece = self._pieces[0]
                take = piece[self._offset : self._offset + want]
                out.append(take)
                want -= len(take)
                self._offset += len(take)
                if self._offset >= len(piece):
                    self._pieces.popleft()
                    self._offset = 0
        return b"".join(out) if len(out) != 1 else out[0]


def _state_member(
    member: Readable, size: int, on_state: Callable[[Readable], T] | None
) -> tuple[str, T | None, Exception | None]:
    """The sha256 of the state member (read to its end whatever ``on_state`` read of it), what
    ``on_state`` made of it, and what it raised (reported only if the checksums hold: a corrupt
    file is a checksum mismatch, not a decoding error)."""
    state = _Counted(member, hashed=True)
    made: T | None = None
    failure: Exception | None = None
    if on_state is not None:
        try:
            made = on_state(state)
        except (OSError, EOFError, zlib.error, tarfile.TarError):
            raise  # the archive's own framing: reported as such
        except Exception as err:
            failure = err
    while state.read(_READ_BYTES):
        pass
    if state.size != size:
        raise SnapshotError(f"snapshot member {_STATE} is truncated")
    assert state.digest is not None
    return state.digest.hexdigest(), made, failure


def read_archive_stream(
    f: Readable, on_state: Callable[[Readable], T] | None = None
) -> tuple[SnapshotMeta, T | None]:
    """Check the archive read from ``f`` piece by piece (gzip and tar framing, the three
    members, both checksums, the format version, the gzip stream's end), holding no more than
    a piece of it; ``on_state`` is given the state dump as a file while it streams by, and what
    it returns is returned (only when every check holds). :class:`SnapshotError` otherwise."""
    counted = _Counted(f)
    small: dict[str, bytes] = {}
    state_sha: str | None = None
    made: T | None = None
    failure: Exception | None = None
    state_size = -1
    try:
        with gzip.GzipFile(fileobj=counted, mode="rb") as gz:  # type: ignore[call-overload]
            with tarfile.open(fileobj=gz, mode="r|") as tar:
                for info in tar:
                    if info.name not in _MEMBERS or not info.isfile():
                        raise SnapshotError(f"snapshot holds an unexpected member {info.name!r}")
                    if info.name in small or (info.name == _STATE and state_sha is not None):
                        raise SnapshotError(f"snapshot holds {info.name} twice")
                    member = tar.extractfile(info)
                    assert member is not None  # a regular file
                    if info.name == _STATE:
                        state_size = info.size
                        state_sha, made, failure = _state_member(member, info.size, on_state)
                        continue
                    if info.size > _SMALL_MEMBER_BYTES:
                        raise SnapshotError(f"snapshot member {info.name} is {info.size} bytes")
                    data = member.read()
                    if len(data) != info.size:
                        raise SnapshotError(f"snapshot member {info.name} is truncated")
                    small[info.name] = data
            while gz.read(_READ_BYTES):  # to the gzip stream's end: its CRC and length
                pass
    except (OSError, EOFError, zlib.error) as err:
        if not counted.size:
            raise SnapshotError("snapshot is empty") from None
        raise SnapshotError(f"snapshot is not a valid gzip archive (corrupt or truncated): {err}") from None
    except tarfile.TarError as err:
        if not counted.size:
            raise SnapshotError("snapshot is empty") from None
        raise SnapshotError(f"snapshot is not a valid tar archive (corrupt or truncated): {err}") from None
    missing = [m for m in _MEMBERS if m not in small and (m != _STATE or state_sha is None)]
    if missing:
        raise SnapshotError(f"snapshot is missing {', '.join(missing)} (truncated?)")
    assert state_sha is not None
    meta = _checked_meta(small, state_sha, state_size)
    if failure is not None:
        raise failure
    return meta, made


def _checked_meta(small: dict[str, bytes], state_sha: str, state_size: int) -> SnapshotMeta:
    sums = _sums(small[_SUMS])
    for name, got in ((_META, hashlib.sha256(small[_META]).hexdigest()), (_STATE, state_sha)):
        want = sums.get(name)
        if want is None:
            raise SnapshotError(f"snapshot SHA256SUMS has no checksum for {name}")
        if got != want:
            raise SnapshotError(f"snapshot checksum mismatch for {name}: want {want}, got {got}")
    try:
        meta = json.loads(small[_META])
        version = int(meta["Version"])
        parsed = SnapshotMeta(
            id=str(meta["ID"]),
            index=int(meta["Index"]),
            term=int(meta["Term"]),
            size=int(meta["Size"]),
            created=str(meta.get("Created", "")),
            version=version,
            nomadd_version=str(meta.get("NomaddVersion", "")),
            sha256=state_sha,
        )
    except (ValueError, KeyError, TypeError) as err:
        raise SnapshotError(f"snapshot meta.json is invalid: {err!r}") from None
    if version != ARCHIVE_VERSION:
        raise SnapshotError(
            f"snapshot format version {version} is not supported (this build reads {ARCHIVE_VERSION})"
        )
    if parsed.size != state_size:
        raise SnapshotError(f"snapshot state is {state_size} bytes, meta.json says {parsed.size}")
    return parsed


def _sums(text: bytes) -> dict[str, str]:
    sums: dict[str, str] = {}
    for line in text.decode(errors="replace").splitlines():
        digest, _, name = line.partition("  ")
        if digest and name:
            sums[name.strip()] = digest.strip()
    return sums


def _read_all(f: Readable) -> bytes:
    return f.read()


def read_archive(archive: bytes) -> tuple[SnapshotMeta, bytes]:
    """The metadata and state dump of a valid archive; :class:`SnapshotError` otherwise."""
    meta, state = read_archive_stream(io.BytesIO(archive), _read_all)
    assert state is not None
    return meta, state


def check_archive_file(path: str) -> SnapshotMeta:
    """The metadata of the archive file ``path``, checked as it is read (:func:`read_archive_stream`:
    the state is never held, compressed or not); SnapshotError if unusable."""
    try:
        f = open(path, "rb")  # noqa: SIM115  (closed below; an open error is the file's, not the archive's)
    except OSError as err:
        raise SnapshotError(f"cannot open snapshot file {path}: {err.strerror or err}") from None
    with f:
        return read_archive_stream(f)[0]


def read_archive_file(path: str) -> tuple[bytes, SnapshotMeta, bytes]:
    """The bytes, metadata and state of the archive file ``path`` (SnapshotError if unusable)."""
    try:
        with open(path, "rb") as f:
            archive = f.read()
    except OSError as err:
        raise SnapshotError(f"cannot open snapshot file {path}: {err.strerror or err}") from None
    meta, state = read_archive(archive)
    return archive, meta, state


def _row_count(rows: Any) -> int:
    """A table's rows: a map's entries, or those of a version 4 table of runs (a list of
    groups of ``[head key, head, columns]`` segments, ``columns[0]`` the keys after the head:
    nomadd.server.state.store_runs)."""
    if isinstance(rows, list):
        return sum(1 + (len(seg[2][0]) if seg[2] else 0) for group in rows for seg in group)
    return len(rows)


def table_stats(state: bytes) -> list[tuple[str, int, int]]:
    """``(table, rows, bytes)`` of a state dump, largest first (``snapshot inspect``)."""
    try:
        doc = msgpack.unpackb(state, raw=False, strict_map_key=False)
        tables = doc["tables"]
    except Exception as err:
        raise SnapshotError(f"snapshot state cannot be decoded: {err!r}") from None
    out = []
    for name, rows in tables.items():
        packed = msgpack.packb(rows, use_bin_type=True)
        out.append((str(name), _row_count(rows), len(packed)))
    out.sort(key=lambda r: (-r[2], r[0]))
    return out
