"""The chunked index rows of ``allocs_by_node`` / ``allocs_by_job`` hold what a plain list would,
in the same order, under any sequence of adds, updates, removals and restores; and their chunks
stay bounded (at most ``CHUNK_LEN`` each, any two neighbours more than ``CHUNK_LEN`` together)."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nomadd.scheduler.testing import mock_job
from nomadd.server.state import store_allocs, store_jobs
from nomadd.server.state.store import StateStore
from nomadd.structs.alloc import Allocation

_NODES = ("n1", "n2", "n3")
_JOBS = ("a", "b")

# (op, number): "add" a new allocation (on node number % 3, job number % 2), "update" or
# "remove" the stored allocation number % len(stored), "restore" the store from its dump
_OPS = st.lists(
    st.tuples(st.sampled_from(("add", "add", "add", "update", "remove", "restore")), st.integers(0, 10_000)),
    max_size=150,
)


@pytest.fixture
def chunk_len() -> Iterator[None]:
    saved = store_allocs.CHUNK_LEN
    yield
    store_allocs.CHUNK_LEN = saved


def _alloc(i: int) -> Allocation:
    return Allocation(
        id=f"00000000-0000-4000-8000-{i:012d}",
        name=f"web[{i}]",
        node_id=_NODES[i % len(_NODES)],
        job_id=_JOBS[i % len(_JOBS)],
        task_group="web",
    )


def _check(store: StateStore, node_rows: dict[str, list[str]], job_rows: dict[str, list[str]]) -> None:
    snap = store.snapshot()
    stored = snap.table(store_allocs.TABLE)
    for node in _NODES:
        got = store_allocs.allocs_by_node(snap, node)
        assert [a.id for a in got] == node_rows.get(node, []), node
        assert all(a is stored[a.id] for a in got)
    for job in _JOBS:
        assert [a.id for a in store_allocs.allocs_by_job(snap, "default", job)] == job_rows.get(job, []), job
    limit = store_allocs.CHUNK_LEN
    for table in (store_allocs.BY_NODE_TABLE, store_allocs.BY_JOB_TABLE):
        for key, chunks in snap.table(table).items():
            assert chunks, (table, key)  # an empty row is deleted
            assert all(0 < len(c) <= limit for c in chunks), (table, key)
            assert all(len(a) + len(b) > limit for a, b in itertools.pairwise(chunks)), (
                table,
                key,
            )


@pytest.mark.usefixtures("chunk_len")
@settings(max_examples=150, deadline=None)
@given(ops=_OPS, limit=st.sampled_from((1, 2, 3, 5, 32)))
def test_chunked_rows_equal_plain_lists_under_random_writes(ops: list[tuple[str, int]], limit: int) -> None:
    store_allocs.CHUNK_LEN = limit
    store = StateStore()
    node_rows: dict[str, list[str]] = {}
    job_rows: dict[str, list[str]] = {}
    live: list[Allocation] = []
    next_id = 0
    for index, (op, n) in enumerate(ops, start=1):
        if op == "restore":
            restored = StateStore()
            restored.restore(store.dump())
            store = restored
            live = [store_allocs.get_alloc(store.snapshot(), a.id) for a in live]  # type: ignore[misc]
        elif op == "add" or not live:
            alloc = _alloc(next_id)
            next_id += 1
            with store.write(index) as txn:
                store_allocs.put_locked(txn, alloc)
            live.append(alloc)
            node_rows.setdefault(alloc.node_id, []).append(alloc.id)
            job_rows.setdefault(alloc.job_id, []).append(alloc.id)
        elif op == "update":
            k = n % len(live)
            live[k] = dataclasses.replace(live[k], desired_description=f"update {index}")
            with store.write(index) as txn:
                store_allocs.put_locked(txn, live[k])
        else:
            gone = live.pop(n % len(live))
            with store.write(index) as txn:
                assert store_allocs.delete_locked(txn, [gone.id]) == 1
            node_rows[gone.node_id].remove(gone.id)
            job_rows[gone.job_id].remove(gone.id)
        _check(store, node_rows, job_rows)


@pytest.mark.usefixtures("chunk_len")
def test_a_plan_that_overflows_the_last_chunk_splits_it_in_order() -> None:
    """A job's new placements are appended in one write (``_append_by_job``): they fill the
    last chunk and the rest go to new chunks, none lost, none repeated."""
    store_allocs.CHUNK_LEN = 4
    store = StateStore()
    with store.write(1) as txn:
        job, _ = store_jobs.upsert_job_locked(txn, mock_job("a", count=1), 1)
    ids: list[str] = []
    for index, size in enumerate((3, 6, 1, 9), start=2):
        batch = [dataclasses.replace(_alloc(2 * (len(ids) + j)), job=None) for j in range(size)]
        with store.write(index) as txn:
            store_allocs.upsert_plan_locked(txn, job, batch, ())
        ids += [a.id for a in batch]
        rows = store.snapshot().get(store_allocs.BY_JOB_TABLE, store_jobs.job_key("default", "a"))
        assert [a.id for c in rows for a in c] == ids  # type: ignore[union-attr]
        assert [len(c) for c in rows] == [4] * (len(ids) // 4) + ([len(ids) % 4] if len(ids) % 4 else [])  # type: ignore[union-attr]


@pytest.mark.usefixtures("chunk_len")
@settings(max_examples=500, deadline=None)
@given(
    ops=st.lists(
        st.tuples(st.sampled_from(("append", "extend", "set", "drop")), st.integers(0, 1000)), max_size=80
    ),
    limit=st.sampled_from((1, 2, 3, 4)),
)
def test_one_row_equals_a_plain_list(ops: list[tuple[str, int]], limit: int) -> None:
    """The row helpers alone, on one row, against a list: the same items in the same order,
    chunks bounded as above."""
    store_allocs.CHUNK_LEN = limit
    chunks: store_allocs.Chunks = ()
    plain: list[str] = []
    for step, (op, n) in enumerate(ops):
        if op == "append" or not plain:
            chunks = store_allocs._chunks_append(chunks, (f"i{step}",))
            plain.append(f"i{step}")
        elif op == "extend":
            items = [f"i{step}.{j}" for j in range(n % 7)]
            chunks = store_allocs._chunks_append(chunks, items)
            plain += items
        else:
            target = plain[n % len(plain)]
            c, i = store_allocs._chunks_find(chunks, None, target)
            assert chunks[c][i] == target
            if op == "set":
                chunks = store_allocs._chunks_set(chunks, c, i, f"{target}'")
                plain[plain.index(target)] = f"{target}'"
            else:
                chunks = store_allocs._chunks_drop(chunks, c, i)
                plain.remove(target)
        assert [x for chunk in chunks for x in chunk] == plain
        assert all(0 < len(c) <= limit for c in chunks)
        assert all(len(a) + len(b) > limit for a, b in itertools.pairwise(chunks))


def test_a_placement_copies_one_chunk_of_its_node_row_not_the_row() -> None:
    """The cost of adding to a node's row does not grow with the row: the chunks before the
    last are the previous row's own objects, shared, and the row is a few chunks long."""
    store = StateStore()
    for i in range(200):  # a node at C1M holds ~200 allocations
        with store.write(i + 1) as txn:
            store_allocs.put_locked(txn, dataclasses.replace(_alloc(3 * i), node_id="n1"))
    before = store.snapshot().get(store_allocs.BY_NODE_TABLE, "n1")
    with store.write(201) as txn:
        store_allocs.put_locked(txn, dataclasses.replace(_alloc(3 * 200), node_id="n1"))
    after = store.snapshot().get(store_allocs.BY_NODE_TABLE, "n1")
    assert before is not None and after is not None
    assert len(after) == len(before) == 7  # 6 full chunks of 32, and the last
    assert all(a is b for a, b in zip(after[:-1], before[:-1], strict=True))
