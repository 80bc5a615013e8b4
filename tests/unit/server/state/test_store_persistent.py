"""The store's tables are persistent maps: every snapshot keeps the rows it was taken with, and
a write after any number of snapshots costs O(log n) (allocates a few trie nodes, never a copy
of the table)."""

from __future__ import annotations

import random
import tracemalloc
from collections.abc import Mapping
from typing import Any

from nomadd.server.state.store import StateSnapshot, StateStore, register_table

register_table("t_persist")
register_table("t_persist_other")


def _apply(store: StateStore, index: int, ops: list[tuple[str, str, int | None]]) -> None:
    with store.write(index) as txn:
        for table, key, value in ops:
            if value is None:
                txn.delete(table, key)
            else:
                txn.put(table, key, value)


def test_every_snapshot_keeps_its_rows_through_later_writes() -> None:
    rng = random.Random(7)
    store = StateStore()
    model: dict[str, dict[str, int]] = {"t_persist": {}, "t_persist_other": {}}
    taken: list[tuple[StateSnapshot, dict[str, dict[str, int]], int]] = []
    for index in range(1, 400):
        ops: list[tuple[str, str, int | None]] = []
        for _ in range(rng.randrange(1, 6)):
            table = rng.choice(["t_persist", "t_persist_other"])
            key = f"k{rng.randrange(300)}"
            value = None if rng.random() < 0.3 else rng.randrange(1000)
            ops.append((table, key, value))
            if value is None:
                model[table].pop(key, None)
            else:
                model[table][key] = value
        _apply(store, index, ops)
        if rng.random() < 0.5:
            taken.append((store.snapshot(), {t: dict(rows) for t, rows in model.items()}, index))
    assert len(taken) > 100
    for snap, expected, index in taken:
        assert snap.index == index
        for table, rows in expected.items():
            assert dict(snap.table(table)) == rows  # one applied index across both tables
            for key, value in rows.items():
                assert snap.get(table, key) == value


def test_table_is_a_read_only_mapping_that_later_writes_do_not_change() -> None:
    store = StateStore()
    _apply(store, 1, [("t_persist", "a", 1), ("t_persist", "b", 2)])
    snap = store.snapshot()
    rows = snap.table("t_persist")
    assert isinstance(rows, Mapping)
    assert sorted(rows.items()) == [("a", 1), ("b", 2)]
    assert not hasattr(rows, "__setitem__")
    assert len(snap.table("never_written")) == 0
    _apply(store, 2, [("t_persist", "a", 9), ("t_persist", "b", None)])
    assert sorted(rows.items()) == [("a", 1), ("b", 2)]


def test_an_entry_reads_its_own_writes_and_may_write_while_iterating() -> None:
    store = StateStore()
    _apply(store, 1, [("t_persist", f"k{i}", i) for i in range(50)])
    before = store.snapshot()
    with store.write(2) as txn:
        txn.put("t_persist", "new", 1)
        assert txn.get("t_persist", "new") == 1
        for key, value in txn.table("t_persist").items():  # the rows so far, frozen
            if value % 2 == 0:
                assert txn.delete("t_persist", key)
            else:
                txn.put("t_persist", key, value * 10)
        assert txn.get("t_persist", "k0") is None
        assert txn.get("t_persist", "k1") == 10
        assert not txn.delete("t_persist", "k0")  # already gone in this entry
        mid = store.snapshot  # a reader waits for the entry (the lock): never half of it
    assert dict(before.table("t_persist")) == {f"k{i}": i for i in range(50)}
    after = mid()
    assert dict(after.table("t_persist")) == {"new": 10, **{f"k{i}": i * 10 for i in range(1, 50, 2)}}
    assert after.table_index("t_persist") == 2


def test_a_failed_entry_keeps_what_it_wrote_and_the_store_stays_usable() -> None:
    store = StateStore()
    try:
        with store.write(1) as txn:
            txn.put("t_persist", "a", 1)
            raise RuntimeError("apply failed")
    except RuntimeError:
        pass
    _apply(store, 2, [("t_persist", "b", 2)])
    assert dict(store.snapshot().table("t_persist")) == {"a": 1, "b": 2}


def _bytes_of_one_write_after_snapshots(rows: int) -> int:
    store = StateStore()
    with store.write(1) as txn:
        for i in range(rows):
            txn.put("t_persist", f"key-{i}", i)
    snaps: list[Any] = [store.snapshot() for _ in range(5)]
    _apply(store, 2, [("t_persist", "key-1", -1)])  # warm: the first write after a snapshot
    snaps.append(store.snapshot())
    tracemalloc.start()
    try:
        _apply(store, 3, [("t_persist", "key-2", -2)])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert snaps[0].get("t_persist", "key-2") == 2
    assert store.get("t_persist", "key-2") == -2
    return peak


def test_a_write_after_a_snapshot_does_not_copy_the_table() -> None:
    """Behaviour, not time: the memory one write allocates after snapshots does not grow with
    the table (a copy-on-write dict would allocate the whole table, megabytes at 100,000 rows)."""
    small = _bytes_of_one_write_after_snapshots(1_000)
    large = _bytes_of_one_write_after_snapshots(100_000)
    assert large < 64 * 1024, large
    assert large < small + 16 * 1024, (small, large)
