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
``dump``/``restore`` can persist the whole store (the format: :mod:`.store_codec`). Per-noun
helpers live in ``store_<noun>.py`` and work on a :class:`Txn` or a :class:`StateSnapshot`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from immutables import MapMutation

# the persistence half (codecs, shared objects, the dump format) lives in store_codec; its names
# are re-exported here, where the per-noun modules have always found them
from nomadd.server.state.store_codec import (
    _NO_ROWS,
    Decoded,
    Rows,
    SharedField,
    TableCodec,
    _as_rows,
    decode_dump,
    dump_snapshot,
    register_shared,
    register_table,
)

logger = logging.getLogger(__name__)

__all__ = [
    "ChangedKeys",
    "KeptRows",
    "SharedField",
    "StateSnapshot",
    "StateStore",
    "TableCodec",
    "Txn",
    "decode_dump",
    "dump_snapshot",
    "kept_rows",
    "register_shared",
    "register_table",
]


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

    __slots__ = (
        "_changed",
        "_keyed",
        "_noted",
        "_open",
        "_store",
        "_tracked",
        "changes",
        "index",
        "keys",
        "replaced",
    )

    def __init__(self, store: StateStore, index: int) -> None:
        self._store = store
        self.index = index  # the Raft index of the entry being applied
        self._changed: set[str] = set()
        self._open: dict[str, MapMutation[str, Any]] = {}
        self._tracked: frozenset[str] = frozenset()
        # the tables some ChangedKeys watches: their written keys go to ``keys``
        self._keyed = store._keyed
        self._noted = self._keyed  # _tracked | _keyed: one membership test per write
        self.keys: dict[str, set[str]] = {}
        # (table, key) -> [value before this entry, value after (None: deleted)], for the
        # tables given to track(); None when nobody asked (the event stream has no subscriber)
        self.changes: dict[tuple[str, str], list[Any]] | None = None
        self.replaced = False  # replace_all ran: every row may have changed (no row-level changes)

    def track(self, tables: frozenset[str]) -> None:
        """Record in :attr:`changes` every row of ``tables`` this entry writes (the event
        stream's source, Nomad's memdb change tracking), in the order first written."""
        self._tracked = tables
        self._noted = tables | self._keyed
        self.changes = {}

    def _record(self, table: str, key: str, before: Any, after: Any) -> None:
        if table in self._keyed:
            self.keys.setdefault(table, set()).add(key)
        if table not in self._tracked:
            return
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

    def tables(self) -> dict[str, Mapping[str, Any]]:
        """Every table as written so far in this entry (immutable: later writes do not change
        them), e.g. the running state a restore decodes against (store_reuse)."""
        for name in list(self._open):
            self.table(name)
        return dict(self._store._tables)

    def put(self, table: str, key: str, value: Any) -> None:
        rows = self._mutation(table)
        if table in self._noted:
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
        if table in self._noted:
            self._record(table, key, old, None)
        self._changed.add(table)
        return True

    def touch(self, table: str) -> None:
        """Move the table index without changing rows (e.g. a delete that must be visible)."""
        self._changed.add(table)

    def replace_all(self, tables: Mapping[str, Mapping[str, Any]]) -> dict[str, Rows]:
        """Swap every table for ``tables`` (a snapshot restore); every table index, old or
        new, moves to this entry's. Live snapshots keep the old rows. Returns the old tables,
        so the caller can free them off this thread (a million rows take seconds to free)."""
        store = self._store
        self.replaced = True
        self._open.clear()
        self._changed.update(store._tables, tables)
        old, store._tables = store._tables, {name: _as_rows(rows) for name, rows in tables.items()}
        return old


_MISSING = object()
V = TypeVar("V")
MAX_CHANGED_KEYS = 10_000  # more changed keys than this and the reader reads the whole table


class ChangedKeys:
    """The keys of one table written since its reader last took them (:meth:`StateStore.take`),
    so a component that follows a big table looks at the rows that changed, not at all of them.
    ``everything`` is set when any row may have changed (first use, a snapshot restore)."""

    __slots__ = ("everything", "keys", "table")

    def __init__(self, table: str) -> None:
        self.table = table
        self.keys: set[str] = set()
        self.everything = True


class KeptRows(Generic[V]):
    """The rows of one table for which ``keep(row)`` holds (:attr:`rows`, key -> row), brought
    up to date by :meth:`take` from the keys written since the last take: O(changed rows) per
    take, not a scan of the table. :meth:`close` when done."""

    def __init__(self, store: StateStore, table: str, keep: Callable[[V], bool]) -> None:
        self._store = store
        self._keep = keep
        self._journal = store.watch_keys(table)
        self.rows: dict[str, V] = {}

    def take(self) -> StateSnapshot:
        """A snapshot, with :attr:`rows` as of it."""
        snap, keys = self._store.take(self._journal)
        table: Mapping[str, V] = snap.table(self._journal.table)
        if keys is None:
            self.rows = {k: v for k, v in table.items() if self._keep(v)}
            return snap
        for key in keys:
            row = table.get(key)
            if row is not None and self._keep(row):
                self.rows[key] = row
            else:
                self.rows.pop(key, None)
        return snap

    def close(self) -> None:
        self._store.unwatch_keys(self._journal)


def kept_rows(
    old: KeptRows[V] | None, enabled: bool, store: StateStore, table: str, keep: Callable[[V], bool]
) -> KeptRows[V] | None:
    """For a leader component's ``set_enabled``: close ``old`` and, when ``enabled``, start
    keeping ``table``'s rows anew (the first take reads the whole table)."""
    if old is not None:
        old.close()
    return KeptRows(store, table, keep) if enabled else None


@dataclass(slots=True, kw_only=True, eq=False)  # compared and hashed by identity
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
        self._waiters: dict[_Waiter, None] = {}  # a dict: O(1) removal of one waiter
        self._journals: list[ChangedKeys] = []
        self._keyed: frozenset[str] = frozenset()  # the tables of _journals and _row_floor
        # rows waited on (wait_for's ``row``): per table waited on, the index below which no
        # row index is known (rows written since have theirs in _row_index), and the waiters
        self._row_floor: dict[str, int] = {}
        self._row_index: dict[tuple[str, str], int] = {}
        self._row_waiters: dict[tuple[str, str], dict[_Waiter, None]] = {}

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
            woken = self._note_keys_locked(txn) if self._keyed else []
            self._latest = max(self._latest, index)
            woken += self._collect_waiters_locked(txn._changed)
        self._wake(woken)

    def _collect_waiters_locked(self, changed: Iterable[str]) -> list[_Waiter]:
        changed = set(changed)
        if not changed or not self._waiters:
            return []
        woken: list[_Waiter] = []
        keep: dict[_Waiter, None] = {}
        for w in self._waiters:
            if w.tables & changed and self._max_index_locked(w.tables) > w.min_index:
                woken.append(w)
            else:
                keep[w] = None
        self._waiters = keep
        return woken

    def _note_keys_locked(self, txn: Txn) -> list[_Waiter]:
        """Hand the written keys to the journals and the row indexes; returns the row waiters
        to wake."""
        woken: list[_Waiter] = []
        if txn.replaced:
            woken = self._reset_rows_locked()
        for table in self._row_floor:
            for key in txn.keys.get(table, ()):
                row = (table, key)
                self._row_index[row] = txn.index
                waiting = self._row_waiters.pop(row, None)
                if waiting:
                    woken += waiting
        for journal in self._journals:
            if txn.replaced:
                journal.everything = True
            keys = txn.keys.get(journal.table)
            if keys and not journal.everything:
                journal.keys |= keys
                if len(journal.keys) > MAX_CHANGED_KEYS:  # a reader that looks seldom: it
                    journal.keys = set()  # reads the whole table, once per this many writes
                    journal.everything = True
        return woken

    def _reset_rows_locked(self) -> list[_Waiter]:
        """Every row may have changed (a restore): forget the row indexes (each row's is now
        its table's) and return every row waiter."""
        self._row_index.clear()
        self._row_floor = {table: self._indexes.get(table, 0) for table in self._row_floor}
        woken = [w for waiting in self._row_waiters.values() for w in waiting]
        self._row_waiters.clear()
        return woken

    def _set_keyed_locked(self) -> None:
        self._keyed = frozenset(j.table for j in self._journals) | frozenset(self._row_floor)

    # ---- changed keys (a reader that follows a big table) -------------------------------
    def watch_keys(self, table: str) -> ChangedKeys:
        """Start recording the keys of ``table`` every entry writes; :meth:`unwatch_keys` when
        done (the keys pile up until taken)."""
        journal = ChangedKeys(table)
        with self._lock:
            self._journals = [*self._journals, journal]
            self._set_keyed_locked()
        return journal

    def unwatch_keys(self, journal: ChangedKeys) -> None:
        with self._lock:
            self._journals = [j for j in self._journals if j is not journal]
            self._set_keyed_locked()

    def take(self, journal: ChangedKeys) -> tuple[StateSnapshot, set[str] | None]:
        """A snapshot and the keys of ``journal``'s table written since the last take, as of
        that snapshot (None: any row may have changed, read the whole table)."""
        with self._lock:
            snap = self._snapshot_locked()
            keys: set[str] | None = None if journal.everything else journal.keys
            journal.keys = set()
            journal.everything = False
        return snap, keys

    @staticmethod
    def _wake(waiters: list[_Waiter]) -> None:
        for w in waiters:
            with contextlib.suppress(RuntimeError):  # loop already closed: nobody is waiting
                w.loop.call_soon_threadsafe(_resolve, w.future)

    # ---- read side -----------------------------------------------------------------------
    def snapshot(self) -> StateSnapshot:
        with self._lock:
            return self._snapshot_locked()

    def _snapshot_locked(self) -> StateSnapshot:
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

    async def wait_for(
        self, tables: Iterable[str], min_index: int, timeout: float, row: tuple[str, str] | None = None
    ) -> int:
        """Wait until one of ``tables`` has an index above ``min_index`` or ``timeout`` passes.
        With ``row`` (table, key): until that row is written at an index above ``min_index``
        (Nomad's watch on one node's allocations: the other nodes' writes wake nobody).

        Returns the tables' current index either way (Nomad: returning is no guarantee of
        change). Must be called on the event loop that will be woken.
        """
        names = frozenset(tables)
        loop = asyncio.get_running_loop()
        with self._lock:
            current = self._max_index_locked(names)
            if row is None:
                if current > min_index:
                    return current
                waiting = self._waiters
            else:
                if row[0] not in self._row_floor:  # its rows' indexes are kept from now on; a
                    # row not written since was written at the table's index at the latest
                    self._row_floor[row[0]] = self._indexes.get(row[0], 0)
                    self._set_keyed_locked()
                if self._row_index.get(row, self._row_floor[row[0]]) > min_index:
                    return current
                waiting = self._row_waiters.setdefault(row, {})
            waiter = _Waiter(tables=names, min_index=min_index, loop=loop, future=loop.create_future())
            waiting[waiter] = None
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await asyncio.shield(waiter.future)
        finally:
            with self._lock:
                if row is None:
                    self._waiters.pop(waiter, None)  # (the dict may be a new one by now)
                elif (on_row := self._row_waiters.get(row)) is not None:
                    on_row.pop(waiter, None)
                    if not on_row:
                        del self._row_waiters[row]
        return self.table_index(*names)

    # ---- persistence (inside pysyncobj's full dump) --------------------------------------
    def dump(self) -> bytes:
        """Serialise every table and index (msgpack) from a copy-on-write snapshot: the lock
        is held O(1), so readers on the loop never wait for the encoding."""
        return dump_snapshot(self.snapshot())

    def restore(self, data: bytes) -> None:
        """Replace everything with a :meth:`dump`; wakes every watcher (the world changed)."""
        self.install(decode_dump(data))

    def install(self, decoded: Decoded) -> None:
        """Replace everything with a dump already decoded (:func:`decode_dump_stream`: a Raft
        dump read from its file); wakes every watcher."""
        doc, tables = decoded
        try:  # all of it checked before anything changes
            indexes = {str(k): int(v) for k, v in doc["indexes"].items()}
            latest = int(doc["latest"])
        except (AttributeError, TypeError, ValueError) as err:
            raise ValueError(f"state dump has bad indexes: {err!r}") from None
        rows = {name: _as_rows(t) for name, t in tables.items()}
        with self._lock:
            self._tables, self._indexes, self._latest = rows, indexes, latest
            woken, self._waiters = list(self._waiters), {}
            woken += self._reset_rows_locked()
            for journal in self._journals:
                journal.everything = True
        logger.info("state store restored index=%d tables=%d", self._latest, len(tables))
        self._wake(woken)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
