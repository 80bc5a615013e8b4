"""How the state store is persisted: table codecs, shared objects and the dump format.

Tables are registered once with :func:`register_table` (name + msgpack-able encode/decode), so
a dump (:func:`dump_snapshot`) can persist the whole store inside pysyncobj's full dump file,
an ``operator snapshot save`` archive or a snapshot sent to a follower, and
:func:`decode_dump` can read it back (:meth:`nomadd.server.state.store.StateStore.restore`).
Version 2 dumps are written and read row by row: one encoded row alive at a time, the GIL free
between rows, and objects many rows share (a job version) written once (:class:`Refs`).
"""

from __future__ import annotations

import contextlib
import gc
import io
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import msgpack  # type: ignore[import-untyped]
from immutables import Map

from nomadd.structs.codec_diff import replacer

__all__ = [
    "DUMP_FORMAT_VERSION",
    "Refs",
    "Rows",
    "SharedField",
    "SharedKind",
    "TableCodec",
    "decode_dump",
    "dump_snapshot",
    "register_shared",
    "register_table",
]


class DumpSource(Protocol):
    """What :func:`dump_snapshot` reads of a :class:`~nomadd.server.state.store.StateSnapshot`."""

    @property
    def _tables(self) -> Mapping[str, Mapping[str, Any]]: ...
    @property
    def _indexes(self) -> Mapping[str, int]: ...
    @property
    def index(self) -> int: ...


DUMP_FORMAT_VERSION = 2  # bump when the dump layout changes; restore refuses unknown versions
_READABLE_VERSIONS = (1, 2)  # 1: no shared objects, the whole doc in one msgpack.unpackb


@dataclass(frozen=True, slots=True, kw_only=True)
class SharedKind:
    """How objects of one shared kind (:func:`register_shared`) are written in a dump, and back."""

    encode: Callable[[Any], Any]
    decode: Callable[[Any], Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class SharedField:
    """A field of a table's rows (dataclasses) holding an object of a shared ``kind``: the row
    is encoded and decoded with the field None, and the field is written as a reference."""

    name: str
    kind: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TableCodec:
    """How one table's values become msgpack-able objects in a dump, and back. With ``refs``
    the functions take a second argument, the dump's :class:`Refs`."""

    encode: Callable[..., Any]
    decode: Callable[..., Any]
    refs: bool = False
    shared: SharedField | None = None


def _identity(value: Any) -> Any:
    return value


_TABLES: dict[str, TableCodec] = {}
_SHARED: dict[str, SharedKind] = {}


def register_table(
    name: str,
    encode: Callable[..., Any] = _identity,
    decode: Callable[..., Any] = _identity,
    *,
    refs: bool = False,
    shared: SharedField | None = None,
) -> None:
    """Declare a table (idempotent for the same name). Call at import time of store_<noun>.py."""
    _TABLES[name] = TableCodec(encode=encode, decode=decode, refs=refs, shared=shared)


def register_shared(kind: str, encode: Callable[[Any], Any], decode: Callable[[Any], Any]) -> None:
    """Declare a kind of object that many rows, of one table or several, hold as one object (a
    job version: the jobs table, its versions and every allocation placed with it). A dump
    writes each distinct object once and rows refer to it by number (:meth:`Refs.out`); a
    restore decodes it once and the rows share it again (:meth:`Refs.get`)."""
    _SHARED[kind] = SharedKind(encode=encode, decode=decode)


class _Chunks:
    """msgpack output handed over in pieces of about :data:`_CHUNK_ITEMS` objects: one packer
    buffer grown to the size of the dump is copied at each doubling, a gigabyte at once with
    the GIL held at a million allocations."""

    __slots__ = ("_count", "_packer", "chunks")

    def __init__(self) -> None:
        self._packer = msgpack.Packer(use_bin_type=True, autoreset=False)
        self._count = 0
        self.chunks: list[bytes] = []

    def pack(self, obj: Any) -> None:
        self._packer.pack(obj)
        self._count += 1
        if self._count >= _CHUNK_ITEMS:
            self.flush()

    def map_header(self, n: int) -> None:
        self._packer.pack_map_header(n)

    def array_header(self, n: int) -> None:
        self._packer.pack_array_header(n)

    def flush(self) -> list[bytes]:
        if self._count or len(self._packer.getbuffer()):
            self.chunks.append(self._packer.bytes())
            self._packer.reset()
            self._count = 0
        return self.chunks


_CHUNK_ITEMS = 1024  # ~0.7 MB of allocations


class Refs:
    """One dump's shared objects: numbered as rows refer to them while encoding (:meth:`out`),
    looked up by number while decoding (:meth:`get`)."""

    __slots__ = ("_decoded", "_ids", "_packed")

    def __init__(self) -> None:
        self._ids: dict[str, dict[int, int]] = {}  # kind -> id(object) -> number
        self._packed: dict[str, _Chunks] = {}  # kind -> the objects packed, in order
        self._decoded: dict[str, list[Any]] = {}

    def out(self, kind: str, obj: Any) -> int | None:
        """The number of ``obj`` in this dump (None stays None). The snapshot being dumped
        keeps every object alive, so an ``id`` is one object's for the whole dump."""
        if obj is None:
            return None
        ids = self._ids.get(kind)
        if ids is None:
            ids = self._ids[kind] = {}
            self._packed[kind] = _Chunks()
        ref = ids.get(id(obj))
        if ref is None:
            ref = ids[id(obj)] = len(ids)
            self._packed[kind].pack(_SHARED[kind].encode(obj))  # garbage at once: packed now
        return ref

    def get(self, kind: str, ref: Any) -> Any:
        """The object numbered ``ref``; a version 1 dump's rows hold the object itself."""
        if ref is None:
            return None
        if not isinstance(ref, int):
            shared = _SHARED.get(kind)
            if shared is None:
                raise ValueError(f"state dump refers to unknown shared kind {kind!r}")
            return shared.decode(ref)
        try:
            return self._decoded[kind][ref]
        except (KeyError, IndexError):
            raise ValueError(f"state dump refers to unknown {kind} {ref!r}") from None

    def _write(self, out: _Chunks) -> None:
        out.pack("shared")
        out.map_header(len(self._ids))
        for kind, ids in self._ids.items():
            out.pack(kind)
            out.array_header(len(ids))
            out.flush()  # what it packed so far goes before the objects' chunks
            out.chunks += self._packed[kind].flush()

    def _read(self, unpacker: Any) -> None:
        """The dump's ``shared`` map, object by object (the GIL passes between them)."""
        for _ in range(unpacker.read_map_header()):
            kind = unpacker.unpack()
            shared = _SHARED.get(kind)
            if shared is None:
                raise ValueError(f"state dump has unknown shared kind {kind!r}")
            decode = shared.decode
            self._decoded[kind] = [decode(unpacker.unpack()) for _ in range(unpacker.read_array_header())]


Rows = Map[str, Any]  # one table: key -> immutable value
_NO_ROWS: Rows = Map()  # a table never written


def _as_rows(rows: Mapping[str, Any]) -> Rows:
    return rows if isinstance(rows, Map) else Map(rows)


_gc_lock = threading.Lock()
_gc_pauses = 0  # restores running now (a restore may run in a thread while another decodes)
_gc_was_enabled = False


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off while a restore builds millions of objects that all
    live on (each collection would walk them again: twice the time), and those objects frozen
    (``gc.freeze``) when it is done: turned back on, the collector would otherwise walk every
    one of them at once, holding the GIL (1.2 s after 100,000 allocations, here). The state is
    immutable and acyclic, freed by reference counting when replaced; what else is alive at
    that moment is frozen too (only a reference cycle among those objects that is dropped
    later is never collected)."""
    global _gc_pauses, _gc_was_enabled
    with _gc_lock:
        if _gc_pauses == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pauses += 1
    done = False
    try:
        yield
        done = True
    finally:
        with _gc_lock:
            _gc_pauses -= 1
            if _gc_pauses == 0:
                if done:
                    gc.freeze()
                if _gc_was_enabled:
                    gc.enable()


def _row_decoder(name: str, refs: Refs) -> Callable[[Any], Any]:
    codec = _TABLES.get(name)
    if codec is None:
        raise ValueError(f"state dump has unknown table {name!r}")
    decode = codec.decode
    if codec.refs:
        return lambda raw: decode(raw, refs)
    field = codec.shared
    if field is None:
        return decode
    attach: list[Callable[..., Any]] = []  # the replacer of the rows' class, once known

    def decode_row(raw: Any) -> Any:
        ref = raw.pop(field.name, None) if isinstance(raw, dict) else None
        row = decode(raw)
        if ref is None:
            return row
        if not attach:
            attach.append(replacer(type(row), field.name))
        return attach[0](row, refs.get(field.kind, ref))

    return decode_row


def _decode_v1_tables(tables: Any) -> dict[str, Mapping[str, Any]]:
    out: dict[str, Mapping[str, Any]] = {}
    for name, rows in tables.items():
        decode = _row_decoder(name, Refs())  # no shared objects: rows hold them
        built = _NO_ROWS.mutate()
        for k, v in rows.items():
            built[k] = decode(v)
        out[name] = built.finish()
    return out


def _read_stream(data: bytes) -> tuple[dict[str, Any], dict[str, Mapping[str, Any]]]:
    """A version 2 dump, row by row: only one encoded row is held at a time (a whole
    ``unpackb`` of a million allocations would hold them all, gigabytes, before decoding)."""
    unpacker = msgpack.Unpacker(
        io.BytesIO(data), raw=False, strict_map_key=False, max_buffer_size=max(len(data), 1)
    )
    doc: dict[str, Any] = {}
    tables: dict[str, Mapping[str, Any]] = {}
    refs = Refs()
    for _ in range(unpacker.read_map_header()):
        key = unpacker.unpack()
        if key == "shared":
            refs._read(unpacker)
        elif key == "tables":
            for _ in range(unpacker.read_map_header()):
                name = unpacker.unpack()
                decode = _row_decoder(name, refs)
                built = _NO_ROWS.mutate()
                for _ in range(unpacker.read_map_header()):
                    k = unpacker.unpack()
                    built[k] = decode(unpacker.unpack())
                tables[name] = built.finish()
        else:
            doc[key] = unpacker.unpack()
    if doc.get("v") != 2 or "indexes" not in doc or "latest" not in doc:
        raise ValueError(f"not a version 2 state dump (v={doc.get('v')!r})")
    return doc, tables


def decode_dump(data: bytes) -> tuple[dict[str, Any], dict[str, Mapping[str, Any]]]:
    """The document and decoded tables of a :func:`dump_snapshot`; ValueError if it is not one."""
    version = _peek_version(data)
    if version not in _READABLE_VERSIONS:
        raise ValueError(f"unknown state dump version {version!r}")
    with _gc_paused():
        try:
            if version == 2:
                return _read_stream(data)
            doc = msgpack.unpackb(data, raw=False, strict_map_key=False)
            return doc, _decode_v1_tables(doc["tables"])
        except ValueError:
            raise
        except Exception as err:  # msgpack's own errors, a row of the wrong shape
            raise ValueError(f"state dump cannot be decoded: {err!r}") from None


def _peek_version(data: bytes) -> Any:
    """The ``v`` of a dump: the first key of version 2 dumps (the writer puts it there); a
    version 1 dump is one map in any order (read whole)."""
    try:
        unpacker = msgpack.Unpacker(io.BytesIO(data), raw=False, strict_map_key=False)
        if unpacker.read_map_header() and unpacker.unpack() == "v":
            return unpacker.unpack()
        doc = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception:  # not msgpack at all
        return None
    return doc.get("v") if isinstance(doc, dict) else None


def dump_snapshot(snap: DumpSource) -> bytes:
    """msgpack of a snapshot's tables and indexes (what :meth:`StateStore.restore` reads).

    Needs no lock: a snapshot never changes. Used for Raft full dumps, off the Raft thread.
    Rows are encoded and packed one at a time (each encoded row is garbage at once, and the GIL
    can pass to other threads between rows: one ``packb`` of the whole document would hold it
    for seconds); objects rows share (:class:`SharedField`) are written once, before the tables.
    """
    body = _Chunks()
    refs = Refs()
    tables = snap._tables
    body.map_header(len(tables))
    for name, rows in tables.items():
        codec = _TABLES.get(name)
        if codec is None:
            raise RuntimeError(f"state table {name!r} is not registered")
        body.pack(name)
        body.map_header(len(rows))
        encode = codec.encode
        field = codec.shared
        if codec.refs:
            for k, v in rows.items():
                body.pack(k)
                body.pack(encode(v, refs))
        elif field is None:
            for k, v in rows.items():
                body.pack(k)
                body.pack(encode(v))
        else:
            detach: Callable[..., Any] | None = None
            for k, v in rows.items():
                obj = getattr(v, field.name)
                if obj is not None:
                    if detach is None:
                        detach = replacer(type(v), field.name)
                    wire = encode(detach(v, None))
                    wire[field.name] = refs.out(field.kind, obj)
                else:
                    wire = encode(v)
                body.pack(k)
                body.pack(wire)
    out = _Chunks()
    out.map_header(5)  # "v" first: decode_dump reads it before anything else
    for key, value in (("v", DUMP_FORMAT_VERSION), ("latest", snap.index), ("indexes", dict(snap._indexes))):
        out.pack(key)
        out.pack(value)
    refs._write(out)  # before the tables: a restore decodes rows as it reads them
    out.pack("tables")
    out.flush()
    return b"".join(out.chunks + body.flush())
