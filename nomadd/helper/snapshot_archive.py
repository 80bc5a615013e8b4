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

import gzip
import hashlib
import io
import json
import tarfile
import time
import zlib
from dataclasses import dataclass
from typing import IO, Any

import msgpack  # type: ignore[import-untyped]

from nomadd import __version__

__all__ = [
    "ARCHIVE_VERSION",
    "SnapshotError",
    "SnapshotMeta",
    "build_archive",
    "read_archive",
    "read_archive_file",
    "table_stats",
    "write_archive",
]

ARCHIVE_VERSION = 1
_META = "meta.json"
_STATE = "state.bin"
_SUMS = "SHA256SUMS"
_MEMBERS = (_META, _STATE, _SUMS)


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


def _add(tar: tarfile.TarFile, name: str, data: IO[bytes], size: int, mtime: float) -> None:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = int(mtime)
    info.mode = 0o600
    tar.addfile(info, data)


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
    meta = {
        "Version": ARCHIVE_VERSION,
        "ID": f"{term}-{index}-{int(now * 1000)}",
        "Index": index,
        "Term": term,
        "Size": size,
        "Created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        "NomaddVersion": __version__,
    }
    meta_bytes = json.dumps(meta, indent=2).encode() + b"\n"
    sums = f"{hashlib.sha256(meta_bytes).hexdigest()}  {_META}\n{sha256}  {_STATE}\n".encode()
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


def _members(archive: bytes) -> dict[str, bytes]:
    if not archive:
        raise SnapshotError("snapshot is empty")
    try:
        raw = gzip.decompress(archive)
    except (OSError, EOFError, zlib.error) as err:
        raise SnapshotError(f"snapshot is not a valid gzip archive (corrupt or truncated): {err}") from None
    out: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
            for info in tar:
                if info.name not in _MEMBERS or not info.isfile():
                    raise SnapshotError(f"snapshot holds an unexpected member {info.name!r}")
                f = tar.extractfile(info)
                data = f.read() if f is not None else b""
                if len(data) != info.size:
                    raise SnapshotError(f"snapshot member {info.name} is truncated")
                out[info.name] = data
    except tarfile.TarError as err:
        raise SnapshotError(f"snapshot is not a valid tar archive (corrupt or truncated): {err}") from None
    missing = [m for m in _MEMBERS if m not in out]
    if missing:
        raise SnapshotError(f"snapshot is missing {', '.join(missing)} (truncated?)")
    return out


def _sums(text: bytes) -> dict[str, str]:
    sums: dict[str, str] = {}
    for line in text.decode(errors="replace").splitlines():
        digest, _, name = line.partition("  ")
        if digest and name:
            sums[name.strip()] = digest.strip()
    return sums


def read_archive(archive: bytes) -> tuple[SnapshotMeta, bytes]:
    """The metadata and state dump of a valid archive; :class:`SnapshotError` otherwise."""
    members = _members(archive)
    sums = _sums(members[_SUMS])
    for name in (_META, _STATE):
        want = sums.get(name)
        if want is None:
            raise SnapshotError(f"snapshot SHA256SUMS has no checksum for {name}")
        got = hashlib.sha256(members[name]).hexdigest()
        if got != want:
            raise SnapshotError(f"snapshot checksum mismatch for {name}: want {want}, got {got}")
    try:
        meta = json.loads(members[_META])
        version = int(meta["Version"])
        parsed = SnapshotMeta(
            id=str(meta["ID"]),
            index=int(meta["Index"]),
            term=int(meta["Term"]),
            size=int(meta["Size"]),
            created=str(meta.get("Created", "")),
            version=version,
            nomadd_version=str(meta.get("NomaddVersion", "")),
            sha256=sums[_STATE],
        )
    except (ValueError, KeyError, TypeError) as err:
        raise SnapshotError(f"snapshot meta.json is invalid: {err!r}") from None
    if version != ARCHIVE_VERSION:
        raise SnapshotError(
            f"snapshot format version {version} is not supported (this build reads {ARCHIVE_VERSION})"
        )
    state = members[_STATE]
    if parsed.size != len(state):
        raise SnapshotError(f"snapshot state is {len(state)} bytes, meta.json says {parsed.size}")
    return parsed, state


def read_archive_file(path: str) -> tuple[bytes, SnapshotMeta, bytes]:
    """The bytes, metadata and state of the archive file ``path`` (SnapshotError if unusable)."""
    try:
        with open(path, "rb") as f:
            archive = f.read()
    except OSError as err:
        raise SnapshotError(f"cannot open snapshot file {path}: {err.strerror or err}") from None
    meta, state = read_archive(archive)
    return archive, meta, state


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
        out.append((str(name), len(rows), len(packed)))
    out.sort(key=lambda r: (-r[2], r[0]))
    return out
