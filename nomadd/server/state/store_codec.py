"""How the state store is persisted: table codecs, shared objects and the dump format.

Tables are registered once with :func:`register_table` (name + msgpack-able encode/decode), so
a dump (:func:`dump_snapshot`) can persist the whole store inside pysyncobj's full dump file,
an ``operator snapshot save`` archive or a snapshot sent to a follower, and
:func:`decode_dump` can read it back (:meth:`nomadd.server.state.store.StateStore.restore`).
Version 2 dumps are written and read row by row: one encoded row alive at a time, the GIL free
between rows, and objects many rows share (a job version) written once (:class:`Refs`). The
writer hands the dump out piece by piece (:func:`write_dump`: a Raft dump goes straight into
its file) and the reader takes a file (:func:`decode_dump_stream`), so neither holds the
whole dump (a gigabyte at a million allocations).

Version 3 writes the rows of a table with a :class:`RowDiff` (allocations, job versions) as
strict differences from the row before, grouped by their shared object (job version by job
version); a restore builds each row over the one before. Version 4 (written now; 3, 2 and 1
still read) writes allocations as runs of columns (:mod:`.store_runs`) and the index rows of
allocations by their numbers in that table (``keys_of``). docs/contributing/raft.md.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import msgpack  # type: ignore[import-untyped]
from immutables import Map

from nomadd.helper import gc_policy
from nomadd.server.state import store_reuse
from nomadd.server.state.store_runs import RunCodec, keys_decoder, read_runs, row_key, write_runs
from nomadd.structs.codec_diff import replacer

__all__ = [
    "DUMP_FORMAT_VERSION",
    "Decoded",
    "Refs",
    "RowDiff",
    "Rows",
    "SharedField",
    "SharedKind",
    "TableCodec",
    "decode_dump",
    "decode_dump_stream",
    "dump_reader",
    "dump_snapshot",
    "dump_streams",
    "register_shared",
    "register_table",
    "write_dump",
]


class DumpSource(Protocol):
    """What :func:`dump_snapshot` reads of a :class:`~nomadd.server.state.store.StateSnapshot`."""

    @property
    def _tables(self) -> Mapping[str, Mapping[str, Any]]: ...
    @property
    def _indexes(self) -> Mapping[str, int]: ...
    @property
    def index(self) -> int: ...


DUMP_FORMAT_VERSION = 4  # bump when the dump layout changes; restore refuses unknown versions
_READABLE_VERSIONS = (1, 2, 3, 4)  # 1: the whole doc in one msgpack.unpackb; 2: rows whole
_WRITABLE_VERSIONS = (2, 3, 4)  # 2, 3: for tests of old dumps and the benchmark's baselines


@dataclass(frozen=True, slots=True, kw_only=True)
class SharedKind:
    """How objects of one shared kind (:func:`register_shared`) are written in a dump, and back."""

    encode: Callable[[Any], Any]
    decode: Callable[[Any], Any]
    diff: RowDiff | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SharedField:
    """A field of a table's rows (dataclasses) holding an object of a shared ``kind``: the row
    is encoded and decoded with the field None, and the field is written as a reference."""

    name: str
    kind: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RowDiff:
    """How a version 3 dump writes a row of a table as its difference from the row before:
    ``encode(prev, row)`` a dict of what differs, strictly (a field left out is the same
    object or strictly equal, see :func:`~nomadd.structs.codec_diff.to_wire_diff`), and
    ``decode(diff, prev)`` the row built over ``prev`` (the row decoded before)."""

    encode: Callable[[Any, Any], dict[str, Any]]
    decode: Callable[[dict[str, Any], Any], Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class TableCodec:
    """How one table's values become msgpack-able objects in a dump, and back. With ``refs``
    the functions take a second argument, the dump's :class:`Refs`."""

    encode: Callable[..., Any]
    decode: Callable[..., Any]
    refs: bool = False
    shared: SharedField | None = None
    diff: RowDiff | None = None
    runs: RunCodec | None = None  # version 4 (store_runs): needs ``shared`` and ``diff``
    keys_of: str = ""  # version 4: each row is a list of keys of that table (a runs table), by number


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
    diff: RowDiff | None = None,
    runs: RunCodec | None = None,
    keys_of: str = "",
) -> None:
    """Declare a table (idempotent for the same name). Call at import time of store_<noun>.py."""
    if runs is not None and (shared is None or diff is None):
        raise ValueError(f"state table {name!r}: runs need a shared field and a row diff")
    _TABLES[name] = TableCodec(
        encode=encode, decode=decode, refs=refs, shared=shared, diff=diff, runs=runs, keys_of=keys_of
    )


def register_shared(
    kind: str, encode: Callable[[Any], Any], decode: Callable[[Any], Any], *, diff: RowDiff | None = None
) -> None:
    """Declare a kind of object that many rows, of one table or several, hold as one object (a
    job version: the jobs table, its versions and every allocation placed with it). A dump
    writes each distinct object once and rows refer to it by number (:meth:`Refs.out`); a
    restore decodes it once and the rows share it again (:meth:`Refs.get`). With ``diff``, a
    version 3 dump writes each object but the first of its kind as its difference from the one
    before (the job versions of a C1M run are alike but for their IDs)."""
    _SHARED[kind] = SharedKind(encode=encode, decode=decode, diff=diff)


class _Packed:
    """msgpack output handed to ``sink`` in pieces of about :data:`_CHUNK_ITEMS` objects: a
    dump goes out as it is encoded (a Raft dump straight into its gzip file), so what is held
    at once is one piece, not the dump (a gigabyte at a million allocations)."""

    __slots__ = ("_count", "_packer", "_sink")

    def __init__(self, sink: Callable[[bytes], object]) -> None:
        self._packer = msgpack.Packer(use_bin_type=True, autoreset=False)
        self._count = 0
        self._sink = sink

    def pack(self, obj: Any) -> None:
        self._packer.pack(obj)
        self._count += 1
        if self._count >= _CHUNK_ITEMS:
            self.flush()

    def map_header(self, n: int) -> None:
        self._packer.pack_map_header(n)

    def array_header(self, n: int) -> None:
        self._packer.pack_array_header(n)

    def flush(self) -> None:
        if len(self._packer.getbuffer()):
            self._sink(self._packer.bytes())
            self._packer.reset()
        self._count = 0


_CHUNK_ITEMS = 1024  # ~0.7 MB of allocations


class Refs:
    """One dump's shared objects: numbered as rows refer to them while encoding (:meth:`out`),
    looked up by number while decoding (:meth:`get`).

    A dump numbers them in a first pass over the rows, writes them (:meth:`_write`), then
    writes the rows, whose references are then known numbers: a restore decodes rows as it
    reads them, so the objects come first, and the rows are not held back meanwhile."""

    __slots__ = ("_decoded", "_ids", "_objects", "_sealed", "keys")

    def __init__(self) -> None:
        self._ids: dict[str, dict[int, int]] = {}  # kind -> id(object) -> number
        self._objects: dict[str, list[Any]] = {}  # kind -> the objects, in number order
        self._decoded: dict[str, list[Any]] = {}
        self._sealed = False  # written: every object has its number
        # a runs table's keys, in the order written (key -> number) or read (number -> key)
        self.keys: dict[str, Any] = {}

    def out(self, kind: str, obj: Any) -> int | None:
        """The number of ``obj`` in this dump (None stays None). The snapshot being dumped
        keeps every object alive, so an ``id`` is one object's for the whole dump."""
        if obj is None:
            return None
        ids = self._ids.get(kind)
        ref = ids.get(id(obj)) if ids is not None else None
        if ref is None:
            if self._sealed:
                raise RuntimeError(f"state dump: a {kind} the first pass did not number")
            if ids is None:
                ids = self._ids[kind] = {}
                self._objects[kind] = []
            ref = ids[id(obj)] = len(ids)
            self._objects[kind].append(obj)
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

    def _write(self, out: _Packed, version: int) -> None:
        self._sealed = True
        out.pack("shared")
        out.map_header(len(self._objects))
        for kind, objects in self._objects.items():
            shared = _SHARED[kind]
            encode = shared.encode
            diff = shared.diff.encode if shared.diff is not None and version >= 3 else None
            out.pack(kind)
            out.array_header(len(objects))
            prev: Any = None
            for i, obj in enumerate(objects):
                out.pack(encode(obj) if diff is None or i == 0 else diff(prev, obj))  # garbage once packed
                prev = obj

    def _read(self, unpacker: Any, version: Any) -> None:
        """The dump's ``shared`` map, object by object (the GIL passes between them)."""
        for _ in range(unpacker.read_map_header()):
            kind = unpacker.unpack()
            shared = _SHARED.get(kind)
            if shared is None:
                raise ValueError(f"state dump has unknown shared kind {kind!r}")
            decode = shared.decode
            over = shared.diff.decode if shared.diff is not None and version in (3, 4) else None
            keep = store_reuse.keeper(kind)  # a restore's: the running state's equal object
            objects: list[Any] = []
            for i in range(unpacker.read_array_header()):
                raw = unpacker.unpack()
                obj = decode(raw) if over is None or i == 0 else over(raw, objects[-1])
                objects.append(obj if keep is None else keep(obj))
            self._decoded[kind] = objects


Rows = Map[str, Any]  # one table: key -> immutable value
_NO_ROWS: Rows = Map()  # a table never written


def _as_rows(rows: Mapping[str, Any]) -> Rows:
    return rows if isinstance(rows, Map) else Map(rows)


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


def _over_decoder(name: str, refs: Refs) -> Callable[[Any, Any], Any] | None:
    """``decode(raw, prev)`` of a version 3 row that differs from ``prev`` (None: rows whole)."""
    codec = _TABLES[name]
    if codec.diff is None:
        return None
    decode = codec.diff.decode
    field = codec.shared
    if field is None:
        return decode

    def decode_over(raw: Any, prev: Any) -> Any:
        if field.name not in raw:  # the same object as the row before's
            return decode(raw, prev)
        ref = raw.pop(field.name)  # a new group: once per job version (replacer is cached)
        row = decode(raw, prev)
        return replacer(type(row), field.name)(row, refs.get(field.kind, ref))

    return decode_over


def _decode_v1_tables(tables: Any) -> dict[str, Mapping[str, Any]]:
    out: dict[str, Mapping[str, Any]] = {}
    for name, rows in tables.items():
        decode = _row_decoder(name, Refs())  # no shared objects: rows hold them
        built = _NO_ROWS.mutate()
        for k, v in rows.items():
            built[k] = decode(v)
        out[name] = built.finish()
    return out


Decoded = tuple[dict[str, Any], dict[str, Mapping[str, Any]]]  # the document, the decoded tables

_READ_BYTES = 1 << 20  # what a stream reader asks its file for at a time
_MAX_OBJECT_BYTES = 1 << 30  # one row or shared object of a dump read from a file (a sanity bound)


class Readable(Protocol):
    """A binary file to read a dump from (a file, a ``GzipFile``)."""

    def read(self, size: int = -1, /) -> bytes: ...


def dump_reader(f: Readable) -> Any:
    """A msgpack reader of a dump in the file ``f`` (read :data:`_READ_BYTES` at a time), for
    :func:`decode_dump_stream`; what follows the dump in the file is read through it too."""
    return msgpack.Unpacker(
        f, raw=False, strict_map_key=False, read_size=_READ_BYTES, max_buffer_size=_MAX_OBJECT_BYTES
    )


def _read_stream(unpacker: Any) -> Decoded:
    """A version 2, 3 or 4 dump, row by row: one encoded row is held at a time (a whole
    ``unpackb`` of a million allocations would hold them all, gigabytes, before decoding)."""
    doc: dict[str, Any] = {}
    tables: dict[str, Mapping[str, Any]] = {}
    refs = Refs()
    for _ in range(unpacker.read_map_header()):
        key = unpacker.unpack()
        if key == "shared":
            refs._read(unpacker, doc.get("v"))
        elif key == "tables":
            for _ in range(unpacker.read_map_header()):
                name = unpacker.unpack()
                tables[name] = _read_table(unpacker, name, refs, doc.get("v"))
        else:
            doc[key] = unpacker.unpack()
            if key == "v" and doc[key] not in _WRITABLE_VERSIONS:  # first (the writer puts it there)
                raise ValueError(f"unknown state dump version {doc[key]!r}")
    if doc.get("v") not in _WRITABLE_VERSIONS or "indexes" not in doc or "latest" not in doc:
        raise ValueError(f"not a version 2, 3 or 4 state dump (v={doc.get('v')!r})")
    return doc, tables


def _read_table(unpacker: Any, name: str, refs: Refs, version: Any) -> Rows:
    decode = _row_decoder(name, refs)
    over = _over_decoder(name, refs) if version in (3, 4) else None
    codec = _TABLES[name]
    if version == 4 and codec.runs is not None and over is not None:
        read: list[Any] = []
        refs.keys[name] = read
        return read_runs(unpacker, codec.runs, decode, over, read, store_reuse.live_table(name))
    if version == 4 and codec.keys_of in refs.keys:
        decode = keys_decoder(refs.keys[codec.keys_of], decode)
    built = _NO_ROWS.mutate()
    prev: Any = None
    for i in range(unpacker.read_map_header()):
        k = unpacker.unpack()
        raw = unpacker.unpack()
        k = row_key(k, raw)
        prev = built[k] = decode(raw) if over is None or i == 0 else over(raw, prev)
    return built.finish()


@contextlib.contextmanager
def _decoding() -> Iterator[None]:
    """A restore's decode: the collector paused (:func:`gc_policy.paused`), and every failure a
    ValueError that says it is the dump's."""
    with gc_policy.paused():
        try:
            yield
        except ValueError:
            raise
        except Exception as err:  # msgpack's own errors, a row of the wrong shape, a bad file
            raise ValueError(f"state dump cannot be decoded: {err!r}") from None


def decode_dump_stream(unpacker: Any) -> Decoded:
    """The document and decoded tables of a version 2-4 dump read from a :func:`dump_reader`,
    row by row (the file is never held whole); ValueError if it is not one."""
    with _decoding():
        return _read_stream(unpacker)


def decode_dump(data: bytes) -> Decoded:
    """The document and decoded tables of a :func:`dump_snapshot`; ValueError if it is not one."""
    version = _peek_version(data)
    if version not in _READABLE_VERSIONS:
        raise ValueError(f"unknown state dump version {version!r}")
    with _decoding():
        if version != 1:
            unpacker = msgpack.Unpacker(
                io.BytesIO(data), raw=False, strict_map_key=False, max_buffer_size=max(len(data), 1)
            )
            return _read_stream(unpacker)
        doc = msgpack.unpackb(data, raw=False, strict_map_key=False)
        return doc, _decode_v1_tables(doc["tables"])


def dump_streams(head: bytes) -> bool:
    """Whether the dump starting with ``head`` (its first few dozen bytes) can be read row by
    row with :func:`decode_dump_stream` (every version this one writes; not version 1)."""
    return _peek_version(head) in _WRITABLE_VERSIONS


def _peek_version(data: bytes) -> Any:
    """The ``v`` of a dump: the first key of version 2 and 3 dumps (the writer puts it there);
    a version 1 dump is one map in any order (read whole)."""
    try:
        unpacker = msgpack.Unpacker(io.BytesIO(data), raw=False, strict_map_key=False)
        if unpacker.read_map_header() and unpacker.unpack() == "v":
            return unpacker.unpack()
        doc = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception:  # not msgpack at all
        return None
    return doc.get("v") if isinstance(doc, dict) else None


def _codec(name: str) -> TableCodec:
    codec = _TABLES.get(name)
    if codec is None:
        raise RuntimeError(f"state table {name!r} is not registered")
    return codec


def _number_shared(
    tables: Mapping[str, Mapping[str, Any]], refs: Refs, grouped: bool
) -> dict[str, list[Any]]:
    """The first pass of a dump: number every shared object the rows refer to (no row is
    encoded but the refs tables', whose encoding is only their references). With ``grouped``
    (version 3 and 4), the keys of each table that has both a shared field and a
    :class:`RowDiff`, in the order to write them: object by object (a job version's
    allocations together), one list per object."""
    orders: dict[str, list[list[Any]]] = {}
    for name, rows in tables.items():
        codec = _codec(name)
        field = codec.shared
        if codec.refs:
            encode = codec.encode
            for v in rows.values():
                encode(v, refs)
        elif field is not None:
            attr, kind = field.name, field.kind
            if not grouped or codec.diff is None:
                for v in rows.values():
                    refs.out(kind, getattr(v, attr))
                continue
            groups: dict[int | None, list[Any]] = {}
            for k, v in rows.items():
                ref = refs.out(kind, getattr(v, attr))
                keys = groups.get(ref)
                if keys is None:
                    keys = groups[ref] = []
                keys.append(k)
            orders[name] = list(groups.values())
    return orders


def write_dump(
    snap: DumpSource, sink: Callable[[bytes], object], *, version: int = DUMP_FORMAT_VERSION
) -> None:
    """A snapshot's tables and indexes, msgpack (what :func:`decode_dump` reads), handed to
    ``sink`` piece by piece as they are encoded: nothing of the size of the dump is held.

    Needs no lock: a snapshot never changes. Used for Raft full dumps, off the Raft thread.
    Rows are encoded and packed one at a time (each encoded row is garbage at once, and the GIL
    can pass to other threads between rows: one ``packb`` of the whole document would hold it
    for seconds); objects rows share (:class:`SharedField`) are written once, before the tables
    (numbered by a first pass over the rows, :func:`_number_shared`). ``version`` 2 writes
    every row whole (a test of old dumps, the benchmark's baseline).
    """
    if version not in _WRITABLE_VERSIONS:
        raise ValueError(f"cannot write state dump version {version!r}")
    tables = snap._tables
    refs = Refs()
    orders = _number_shared(tables, refs, grouped=version >= 3)
    out = _Packed(sink)
    out.map_header(5)  # "v" first: decode_dump reads it before anything else
    for key, value in (("v", version), ("latest", snap.index), ("indexes", dict(snap._indexes))):
        out.pack(key)
        out.pack(value)
    refs._write(out, version)  # before the tables: a restore decodes rows as it reads them
    out.pack("tables")
    out.map_header(len(tables))
    for name, rows in tables.items():
        codec = _codec(name)
        out.pack(name)
        encode = codec.encode
        if codec.runs is not None and version >= 4 and name in orders:
            assert codec.shared is not None and codec.diff is not None  # register_table checks it
            written: list[Any] = []
            codecs = (codec.encode, codec.diff.encode)
            write_runs(out, rows, codec.runs, codecs, codec.shared, refs, orders[name], written)
            refs.keys[name] = {k: n for n, k in enumerate(written)}
            continue
        out.map_header(len(rows))
        if version >= 4 and codec.keys_of in refs.keys:
            numbers = refs.keys[codec.keys_of]
            for k, v in rows.items():
                out.pack(k)
                out.pack([numbers.get(key, key) for key in encode(v)])
        elif codec.refs:
            for k, v in rows.items():
                out.pack(k)
                out.pack(encode(v, refs))
        elif codec.shared is None and (codec.diff is None or version < 3):
            for k, v in rows.items():
                out.pack(k)
                out.pack(encode(v))
        else:
            groups = orders.get(name)
            order = [k for keys in groups for k in keys] if groups is not None else None
            _write_rows(out, rows, codec, refs, order, version)
    out.flush()


_NO_REF = object()  # no row before


def _write_rows(
    out: _Packed,
    rows: Mapping[str, Any],
    codec: TableCodec,
    refs: Refs,
    order: list[Any] | None,
    version: int,
) -> None:
    """The rows of a table with a shared field (written as its reference) or, in version 3,
    a :class:`RowDiff` (each row but the first as its difference from the row before)."""
    encode = codec.encode
    field = codec.shared
    diff = codec.diff.encode if codec.diff is not None and version >= 3 else None
    detach: Callable[..., Any] | None = None
    prev: Any = None
    prev_ref: Any = _NO_REF
    for k in order if order is not None else rows.keys():
        v = rows[k]
        ref = None
        if field is not None:
            obj = getattr(v, field.name)
            if obj is not None:
                if detach is None:
                    detach = replacer(type(v), field.name)
                v = detach(v, None)
                ref = refs.out(field.kind, obj)
        if diff is None or prev_ref is _NO_REF:
            wire = encode(v)
            if ref is not None:
                wire[field.name] = ref  # type: ignore[union-attr]
        else:
            wire = diff(prev, v)
            if field is not None and ref != prev_ref:
                wire[field.name] = ref
        prev, prev_ref = v, ref
        out.pack(k)
        out.pack(wire)


def dump_snapshot(snap: DumpSource, *, version: int = DUMP_FORMAT_VERSION) -> bytes:
    """:func:`write_dump` into bytes (a snapshot archive, a test)."""
    buf = io.BytesIO()
    write_dump(snap, buf.write, version=version)
    return buf.getvalue()
