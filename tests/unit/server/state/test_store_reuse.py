"""A restore decoded against the running state (store_reuse): what is strictly equal to the
running state's is kept as its objects; what differs, in any field or only in a float's sign,
is built from the dump, so the restored state is the dump's either way."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import msgpack

from nomadd.server.state import store_allocs, store_jobs, store_reuse
from nomadd.server.state.store import StateStore, decode_dump, dump_snapshot
from nomadd.server.state.store_reuse import reusing
from nomadd.structs.alloc import Allocation, AllocClientStatus
from nomadd.structs.codec_diff import strict_equal
from tests.unit.server.state.runs_state import runs_store


def _restored(data: bytes) -> StateStore:
    store = StateStore()
    store.restore(data)
    return store


def _decoded(
    data: bytes, live: Mapping[str, Mapping[str, Any]] | None, counts: list[int] | None = None
) -> dict[str, Mapping[str, Any]]:
    """The tables of ``data`` decoded against ``live``; ``counts`` gets the allocations the
    decode counted as kept and as built (store_reuse.counts)."""
    with reusing(live):
        tables = decode_dump(data)[1]
        if counts is not None:
            counts.extend(store_reuse.counts())
        return tables


def _same_as_plain(got: dict[str, Mapping[str, Any]], data: bytes) -> None:
    plain = decode_dump(data)[1]
    assert set(got) == set(plain)
    for name, rows in plain.items():
        assert list(got[name]) == list(rows) or set(got[name]) == set(rows), name
        for key, row in rows.items():
            assert strict_equal(got[name][key], row), (name, key)


def test_a_restore_of_the_running_state_keeps_every_row_and_job_version() -> None:
    data = dump_snapshot(runs_store().snapshot())
    running = _restored(data).snapshot()  # the running state: decoded from the same dump
    live = {name: running.table(name) for name in running.table_names()}
    counts: list[int] = []
    got = _decoded(data, live, counts)
    _same_as_plain(got, data)
    assert counts == [36, 0]
    allocs = running.table(store_allocs.TABLE)
    assert len(allocs) == 36
    kept = [k for k, row in got[store_allocs.TABLE].items() if row is allocs[k]]
    assert len(kept) == 36, "every allocation, heads and rows in columns, is the running state's"
    assert got[store_allocs.TABLE] is allocs, "an unchanged table is the running one, not a copy built"
    for key, versions in got[store_jobs.VERSIONS_TABLE].items():
        assert all(
            a is b for a, b in zip(versions, running.table(store_jobs.VERSIONS_TABLE)[key], strict=True)
        )


def _in_columns(data: bytes) -> list[str]:
    """The allocations a version 4 dump writes as columns (after a head), segment by segment."""
    doc = msgpack.unpackb(data, raw=False, strict_map_key=False)
    return [k for group in doc["tables"]["allocs"] for seg in group if seg[2] for k in seg[2][0]]


def _alone(data: bytes) -> list[str]:
    """The allocations a version 4 dump writes as heads with no rows in columns after them."""
    doc = msgpack.unpackb(data, raw=False, strict_map_key=False)
    return [seg[0] for group in doc["tables"]["allocs"] for seg in group if not seg[2]]


def test_what_differs_from_the_running_state_is_built_from_the_dump() -> None:
    """The running state differs from the dump, in rows the dump writes as columns, in a column
    field (a name), in a head field (a client status), in a score's sign only (0.0 against
    the dump's -0.0) and in a head's map's order only (both equal by ``==``), and a head row
    in a field (a client description); and in a job
    version's content under the same version number. Those rows (and that job) are the dump's;
    the rest are still the running state's."""
    archive = runs_store()
    placed = archive.snapshot().table(store_allocs.TABLE)
    with archive.write(998) as txn:  # every metric with a map of two keys, in this order
        for key, row in placed.items():
            if row.metrics is not None:
                metric = dataclasses.replace(row.metrics, nodes_available={"dc1": 3, "dc2": 4})
                txn.put(store_allocs.TABLE, key, dataclasses.replace(row, metrics=metric))
    columns = _in_columns(dump_snapshot(archive.snapshot()))
    renamed, other_status, unsigned, reordered = (
        columns[0],
        columns[len(columns) // 2],
        columns[-1],
        columns[1],
    )
    row = archive.snapshot().table(store_allocs.TABLE)[unsigned]
    assert row.metrics is not None
    first = next(iter(row.metrics.scores))
    signed = dataclasses.replace(row.metrics, scores={**row.metrics.scores, first: -0.0})
    with archive.write(999) as txn:
        txn.put(store_allocs.TABLE, unsigned, dataclasses.replace(row, metrics=signed))
    data = dump_snapshot(archive.snapshot())
    assert len({renamed, other_status, unsigned, reordered}) == 4
    described = _alone(data)[0]  # its rows after it would be built too
    assert {renamed, other_status, unsigned, reordered} <= set(_in_columns(data)), "the rows stay in columns"

    running = _restored(data)
    rows: dict[str, Allocation] = dict(running.snapshot().table(store_allocs.TABLE))
    negative = rows[unsigned].metrics
    assert negative is not None and math.copysign(1.0, negative.scores[first]) == -1.0
    changed = {
        renamed: dataclasses.replace(rows[renamed], name="renamed.g[99]"),
        other_status: dataclasses.replace(rows[other_status], client_status=AllocClientStatus.FAILED),
        unsigned: dataclasses.replace(
            rows[unsigned], metrics=dataclasses.replace(negative, scores={**negative.scores, first: 0.0})
        ),
        described: dataclasses.replace(rows[described], client_description="changed here"),
        reordered: dataclasses.replace(
            rows[reordered],
            metrics=dataclasses.replace(rows[reordered].metrics, nodes_available={"dc2": 4, "dc1": 3}),
        ),
    }
    job_key = store_jobs.job_key("default", "job-1")
    job = running.snapshot().table(store_jobs.TABLE)[job_key]
    other_job = dataclasses.replace(job, meta={"changed": "yes"})  # same version number
    with running.write(1000) as txn:
        for key, changed_row in changed.items():
            txn.put(store_allocs.TABLE, key, changed_row)
        txn.put(store_jobs.TABLE, job_key, other_job)
        txn.put(store_jobs.VERSIONS_TABLE, job_key, (other_job,))
    snap = running.snapshot()
    live = {name: snap.table(name) for name in snap.table_names()}
    counts: list[int] = []
    got = _decoded(data, live, counts)
    _same_as_plain(got, data)  # the dump's state, whatever the running one holds
    assert counts == [31, 5]
    got_allocs, live_allocs = got[store_allocs.TABLE], live[store_allocs.TABLE]
    for key in changed:
        assert got_allocs[key] is not live_allocs[key], key
    assert got[store_jobs.TABLE][job_key] is not other_job
    assert not got[store_jobs.TABLE][job_key].meta
    same = [k for k in got_allocs if k not in changed and got_allocs[k] is live_allocs[k]]
    assert len(same) == 31, "the unchanged rows are the running state's"


def test_a_running_table_with_a_row_more_or_less_than_the_dump_is_not_kept_whole() -> None:
    """Every row the dump holds is the running state's, but the running table holds one more
    (it must not come back), or lacks one (built from the dump): the table is built."""
    data = dump_snapshot(runs_store().snapshot())
    for change in ("one more", "one less"):
        running = _restored(data)
        rows = running.snapshot().table(store_allocs.TABLE)
        key, row = next(iter(rows.items()))
        with running.write(1000) as txn:
            if change == "one more":
                txn.put(store_allocs.TABLE, "extra-" + key, dataclasses.replace(row, id="extra-" + key))
            else:
                txn.delete(store_allocs.TABLE, key)
        snap = running.snapshot()
        live = {name: snap.table(name) for name in snap.table_names()}
        counts: list[int] = []
        got = _decoded(data, live, counts)
        _same_as_plain(got, data)
        assert sum(counts) == 36 and (counts[1] == 0 if change == "one more" else counts[1] > 0), change
        assert got[store_allocs.TABLE] is not live[store_allocs.TABLE], change
        assert len(got[store_allocs.TABLE]) == 36, change


def test_without_a_running_state_nothing_is_shared() -> None:
    data = dump_snapshot(runs_store().snapshot())
    running = _restored(data).snapshot()
    got = _decoded(data, None)
    _same_as_plain(got, data)
    live = running.table(store_allocs.TABLE)
    assert not any(row is live[k] for k, row in got[store_allocs.TABLE].items())
