"""Version 4 dumps (store_runs): the allocations after a head written as columns and rebuilt
exactly (strictly equal, compact, sharing what the head shares); rows that do not fit start a
new segment; damaged columns are a ValueError."""

from __future__ import annotations

import sys

import msgpack
import pytest

from nomadd.helper.snapshot_archive import table_stats
from nomadd.server.state import store_allocs, store_jobs
from nomadd.server.state.store import StateStore, decode_dump, dump_snapshot
from nomadd.structs.alloc import Allocation
from nomadd.structs.codec_diff import strict_equal
from tests.unit.server.state.runs_state import runs_store as _store


def _segments(data: bytes) -> list[list[object]]:
    doc = msgpack.unpackb(data, raw=False, strict_map_key=False)
    assert doc["v"] == 4
    return [seg for group in doc["tables"]["allocs"] for seg in group]


def test_allocations_are_written_as_runs_and_rebuilt_exactly() -> None:
    snap = _store().snapshot()
    data = dump_snapshot(snap)
    segments = _segments(data)
    in_columns = sum(len(seg[2][0]) for seg in segments if seg[2])  # type: ignore[index, arg-type]
    assert len(segments) + in_columns == 36
    assert in_columns >= 15, "the allocations that fit their head should be columns"
    assert len(segments) >= 3 * 4, "rows that do not fit (no metric, other fields) start segments"

    restored = StateStore()
    restored.restore(data)
    after = restored.snapshot()
    before_rows = dict(snap.table("allocs"))
    after_rows = dict(after.table("allocs"))
    assert list(after_rows) == list(before_rows) or set(after_rows) == set(before_rows)
    for key, row in before_rows.items():
        got = after_rows[key]
        assert isinstance(got, Allocation)
        assert strict_equal(got, row), key  # the -0.0 and the int score too
        assert got.id is sys.intern(key)  # one string for the key, the ID and the index rows
        assert got.node_id is sys.intern(row.node_id)
        assert all(k is sys.intern(k) for k in (got.metrics.scores if got.metrics else {}))
    assert all(k is row.id for k, row in after_rows.items())
    for job_id in ("job-0", "job-1", "job-2"):
        rows = store_allocs.allocs_by_job(after, "default", job_id)
        job = store_jobs.get_job(after, "default", job_id)
        assert len(rows) == 12 and all(a.job is job for a in rows)
        assert len({id(a.allocated_resources) for a in rows}) == 1
    for name in snap.table_names():
        if not name.startswith("allocs"):
            assert dict(after.table(name)) == dict(snap.table(name)), name
    assert dump_snapshot(after) == dump_snapshot(restored.snapshot())
    assert decode_dump(dump_snapshot(after, version=3))[1]["allocs"] == after.table("allocs")


def test_snapshot_inspect_counts_the_rows_of_a_table_of_runs() -> None:
    snap = _store().snapshot()
    stats = {name: rows for name, rows, _ in table_stats(dump_snapshot(snap))}
    assert stats[store_allocs.TABLE] == len(snap.table(store_allocs.TABLE)) == 36
    assert stats[store_allocs.BY_JOB_TABLE] == 3


def test_a_version_3_dump_of_the_same_state_restores_the_same_rows() -> None:
    snap = _store().snapshot()
    v3, v4 = StateStore(), StateStore()
    v3.restore(dump_snapshot(snap, version=3))
    v4.restore(dump_snapshot(snap))
    a, b = v3.snapshot().table("allocs"), v4.snapshot().table("allocs")
    assert set(a.keys()) == set(b.keys())
    assert all(strict_equal(a[k], b[k]) for k in a)


def _ids(rows: object) -> list[str]:
    return [r if isinstance(r, str) else r.id for chunk in rows for r in chunk]  # type: ignore[attr-defined]


def test_index_rows_are_written_as_numbers_of_allocation_rows_and_read_back_in_order() -> None:
    snap = _store().snapshot()
    data = dump_snapshot(snap)
    doc = msgpack.unpackb(data, raw=False, strict_map_key=False)
    for table in (store_allocs.BY_JOB_TABLE, store_allocs.BY_NODE_TABLE):
        assert all(type(n) is int for row in doc["tables"][table].values() for n in row), table
    restored = StateStore()
    restored.restore(data)
    after = restored.snapshot()
    allocs = after.table(store_allocs.TABLE)
    for table in (store_allocs.BY_JOB_TABLE, store_allocs.BY_NODE_TABLE):
        before_rows, after_rows = dict(snap.table(table)), dict(after.table(table))
        assert before_rows.keys() == after_rows.keys()
        for key, row in after_rows.items():
            assert _ids(row) == _ids(before_rows[key]), (table, key)  # same IDs, same order
            assert all(i is allocs[i].id for i in _ids(row))  # the allocations' own strings
    # a number past the allocations table is a damaged dump
    doc["tables"][store_allocs.BY_JOB_TABLE]["default\x00job-0"] = [10**6]
    with pytest.raises(ValueError, match="state dump"):
        StateStore().restore(msgpack.packb(doc, use_bin_type=True))


def _damage_columns(data: bytes, damage: str) -> bytes:
    doc = msgpack.unpackb(data, raw=False, strict_map_key=False)
    seg = next(seg for group in doc["tables"]["allocs"] for seg in group if seg[2])
    columns = seg[2]
    if damage == "short":
        columns[1] = columns[1][:-1]  # a name missing
    elif damage == "string":
        columns[2] = [10**6 for _ in columns[2]]  # node IDs by numbers never written
    elif damage == "shape":
        seg[2] = columns[:-1]
    return msgpack.packb(doc, use_bin_type=True)  # type: ignore[no-any-return]


@pytest.mark.parametrize("damage", ["short", "string", "shape"])
def test_damaged_columns_are_a_value_error(damage: str) -> None:
    bad = _damage_columns(dump_snapshot(_store().snapshot()), damage)
    store = StateStore()
    with pytest.raises(ValueError, match="state dump"):
        store.restore(bad)
    assert store.latest_index() == 0
