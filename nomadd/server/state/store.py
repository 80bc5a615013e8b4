"""The server's in-memory state store: tables, per-table Raft indexes, snapshots, watchers.

Writers are the FSM only, on the Raft thread, through :meth:`StateStore.write`, which holds the
store lock for one Raft entry and then wakes the blocking queries whose tables changed (each on
its own event loop, via ``call_soon_threadsafe``). Each table is a persistent map
(``immutables.Map``, a hash array mapped trie): a write makes a new version sharing all but
O(log n) nodes with the old one, so a :class:`StateSnapshot` is O(1) (the current version of
every table, at one applied index), a reader never sees half of an entry, and writing after a
snapshot costs the same as before it, at a million rows as at ten (a per-table copy-on-write
dict copied the whole table on the first write after each snapshot). Within one entry a table's
writes go to one ``MapMutation`` (in place on the nodes it made). Values stored are immutable
(frozen dataclasses, str, bytes, tuples): a snapshot shares them.

Tables are registered once with :func:`register_table` (name + msgpack-able encode/decode), so
``dump``/``restore`` can persist the whole store inside pysyncobj's full dump file. Per-noun
helpers live in ``store_<noun>.py`` and work on a :class:`Txn` or a :class:`StateSnapshot`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import io
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import msgpack  # type: ignore[import-untyped]
from immutables import Map, MapMutation

from nomadd.structs.codec_diff import replacer

logger = logging.getLogger(__name__)

__all__ = [
    "SharedField",
    "StateSnapshot",
    "StateStore",
    "TableCodec",
    "Txn",
    "decode_dump",
    "dump_snapshot",
    "register_shared",
    "register_table",
]

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


class StateSnapshot:
    """An immutable, consistent view of every table at one applied index."""

    __slots__ = ("_indexes", "_tables", "index")

    def __init__(self, tables: Mapping[str, Mapping[str, Any]], indexes: dict[str, int], index: int):
        self._tables: dict[str, Rows] = {name: _as_rows(rows) for name, rows in tables.items()}
        self._indexes = indexes
        self.index = index  # last applied Raft index when the snapshot was taken

    def table(self, name: str) -> Mapping[str, Any]:
        """Read-only mapping key -> value of one table (empty if never written)."""
        return self._tables.get(name, _NO_ROWS)

    def get(self, table: str, key: str) -> Any | None:
        return self._tables.get(table, _NO_ROWS).get(key)

    def table_index(self, *tables: str) -> int:
        """Highest modify index among ``tables`` (at least 1, as Nomad's X-Nomad-Index)."""
        return max([1, *(self._indexes.get(t, 0) for t in tables)])

    def table_names(self) -> list[str]:
        """Every table that has been written, sorted (for whole-store comparisons)."""
        return sorted(self._tables)

    def indexes(self) -> Mapping[str, int]:
        """Each written table's index: the Raft index of the last entry that changed it."""
        return MappingProxyType(self._indexes)


class Txn:
    """One Raft entry's writes; only valid inside :meth:`StateStore.write` (lock held).

    A table written in this entry has an open ``MapMutation`` in :attr:`_open` (reads see it);
    :meth:`table` and the end of the entry turn it back into a ``Map`` in the store."""

    __slots__ = ("_changed", "_open", "_store", "_tracked", "changes", "index", "replaced")

    def __init__(self, store: StateStore, index: int) -> None:
        self._store = store
        self.index = index  # the Raft index of the entry being applied
        self._changed: set[str] = set()
        self._open: dict[str, MapMutation[str, Any]] = {}
        self._tracked: frozenset[str] = frozenset()
        # (table, key) -> [value before this entry, value after (None: deleted)], for the
        # tables given to track(); None when nobody asked (the event stream has no subscriber)
        self.changes: dict[tuple[str, str], list[Any]] | None = None
        self.replaced = False  # replace_all ran: every row may have changed (no row-level changes)

    def track(self, tables: frozenset[str]) -> None:
        """Record in :attr:`changes` every row of ``tables`` this entry writes (the event
        stream's source, Nomad's memdb change tracking), in the order first written."""
        self._tracked = tables
        self.changes = {}

    def _record(self, table: str, key: str, before: Any, after: Any) -> None:
        assert self.changes is not None
        slot = self.changes.get((table, key))
        if slot is None:
            self.changes[(table, key)] = [before, after]
        else:
            slot[1] = after

    def _mutation(self, table: str) -> MapMutation[str, Any]:
        rows = self._open.get(table)
        if rows is None:
            rows = self._open[table] = self._store._tables.get(table, _NO_ROWS).mutate()
        return rows

    def _finish(self) -> None:
        """Store every table written so far as a ``Map`` (a snapshot taken next sees them)."""
        tables = self._store._tables
        for name, rows in self._open.items():
            tables[name] = rows.finish()
        self._open.clear()

    def get(self, table: str, key: str) -> Any | None:
        rows = self._open.get(table)
        if rows is not None:
            return rows.get(key)
        return self._store._tables.get(table, _NO_ROWS).get(key)

    def table(self, name: str) -> Mapping[str, Any]:
        """The table as written so far in this entry; later writes do not change it (it is
        safe to write while iterating it)."""
        rows = self._open.pop(name, None)
        if rows is not None:
            self._store._tables[name] = rows.finish()
        return self._store._tables.get(name, _NO_ROWS)

    def put(self, table: str, key: str, value: Any) -> None:
        rows = self._mutation(table)
        if table in self._tracked:
            self._record(table, key, rows.get(key), value)
        rows[key] = value
        self._changed.add(table)

    def delete(self, table: str, key: str) -> bool:
        """Remove ``key``; returns whether it existed. The table index moves only if it did."""
        rows = self._open.get(table)
        if rows is None:
            if key not in self._store._tables.get(table, _NO_ROWS):
                return False
            rows = self._mutation(table)
        old = rows.pop(key, _MISSING)
        if old is _MISSING:
            return False
        if table in self._tracked:
            self._record(table, key, old, None)
        self._changed.add(table)
        return True

    def touch(self, table: str) -> None:
        """Move the table index without changing rows (e.g. a delete that must be visible)."""
        self._changed.add(table)

    def replace_all(self, tables: Mapping[str, Mapping[str, Any]]) -> None:
        """Swap every table for ``tables`` (a snapshot restore); every table index, old or
        new, moves to this entry's. Live snapshots keep the old rows."""
        store = self._store
        self.replaced = True
        self._open.clear()
        self._changed.update(store._tables, tables)
        store._tables = {name: _as_rows(rows) for name, rows in tables.items()}


_MISSING = object()


@dataclass(slots=True, kw_only=True)
class _Waiter:
    tables: frozenset[str]
    min_index: int
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None]


class StateStore:
    """Tables + indexes. Thread-safe: written on the Raft thread, read from the event loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tables: dict[str, Rows] = {}  # never changed in place: a snapshot copies this dict
        self._indexes: dict[str, int] = {}
        self._latest = 0
        self._waiters: list[_Waiter] = []

    # ---- write side (Raft thread) -------------------------------------------------------
    @contextlib.contextmanager
    def write(self, index: int) -> Iterator[Txn]:
        """Apply one entry at Raft ``index``: yields a :class:`Txn`, then commits and wakes."""
        with self._lock:
            txn = Txn(self, index)
            try:
                yield txn
            finally:
                txn._finish()  # what was written stays written, as in place (no rollback)
            for table in txn._changed:
                self._indexes[table] = index
            self._latest = max(self._latest, index)
            woken = self._collect_waiters_locked(txn._changed)
        self._wake(woken)

    def _collect_waiters_locked(self, changed: Iterable[str]) -> list[_Waiter]:
        changed = set(changed)
        if not changed or not self._waiters:
            return []
        woken: list[_Waiter] = []
        keep: list[_Waiter] = []
        for w in self._waiters:
            if w.tables & changed and self._max_index_locked(w.tables) > w.min_index:
                woken.append(w)
            else:
                keep.append(w)
        self._waiters = keep
        return woken

    @staticmethod
    def _wake(waiters: list[_Waiter]) -> None:
        for w in waiters:
            with contextlib.suppress(RuntimeError):  # loop already closed: nobody is waiting
                w.loop.call_soon_threadsafe(_resolve, w.future)

    # ---- read side -----------------------------------------------------------------------
    def snapshot(self) -> StateSnapshot:
        with self._lock:
            return StateSnapshot(self._tables, dict(self._indexes), self._latest)

    def latest_index(self) -> int:
        return self._latest

    def get(self, table: str, key: str) -> Any | None:
        """One row as of now, without a snapshot."""
        with self._lock:
            return self._tables.get(table, _NO_ROWS).get(key)

    def _max_index_locked(self, tables: Iterable[str]) -> int:
        return max([1, *(self._indexes.get(t, 0) for t in tables)])

    def table_index(self, *tables: str) -> int:
        with self._lock:
            return self._max_index_locked(tables)

    async def wait_for(self, tables: Iterable[str], min_index: int, timeout: float) -> int:
        """Wait until one of ``tables`` has an index above ``min_index`` or ``timeout`` passes.

        Returns the tables' current index either way (Nomad: returning is no guarantee of
        change). Must be called on the event loop that will be woken.
        """
        names = frozenset(tables)
        loop = asyncio.get_running_loop()
        with self._lock:
            current = self._max_index_locked(names)
            if current > min_index:
                return current
            waiter = _Waiter(tables=names, min_index=min_index, loop=loop, future=loop.create_future())
            self._waiters.append(waiter)
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await asyncio.shield(waiter.future)
        finally:
            with self._lock:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        return self.table_index(*names)

    # ---- persistence (inside pysyncobj's full dump) --------------------------------------
    def dump(self) -> bytes:
        """Serialise every table and index (msgpack) from a copy-on-write snapshot: the lock
        is held O(1), so readers on the loop never wait for the encoding."""
        return dump_snapshot(self.snapshot())

    def restore(self, data: bytes) -> None:
        """Replace everything with a :meth:`dump`; wakes every watcher (the world changed)."""
        doc, tables = decode_dump(data)
        with self._lock:
            self._tables = {name: _as_rows(rows) for name, rows in tables.items()}
            self._indexes = {str(k): int(v) for k, v in doc["indexes"].items()}
            self._latest = int(doc["latest"])
            woken, self._waiters = self._waiters, []
        logger.info("state store restored index=%d tables=%d", self._latest, len(tables))
        self._wake(woken)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


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


def dump_snapshot(snap: StateSnapshot) -> bytes:
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
