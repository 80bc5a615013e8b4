"""Dump and restore of the state store: shared objects written once and shared again after a
restore, version 1 dumps still read, bad dumps rejected with a ValueError."""

from __future__ import annotations

import gc
import io

import msgpack
import pytest

from nomadd.server.state import store_allocs, store_jobs
from nomadd.server.state.store import StateStore, decode_dump, dump_snapshot, register_table
from nomadd.server.state.store_codec import decode_dump_stream, dump_reader, write_dump
from nomadd.structs.codec import to_wire
from tests.unit.server.state.runs_state import jobs_store, placed_allocs

register_table("t_dump")


def _store_with_two_jobs() -> StateStore:
    store, index = jobs_store(placed_allocs(4), 2)
    with store.write(index + 1) as txn:
        txn.put("t_dump", "plain", [1, "two"])
    return store


def test_a_job_is_dumped_once_and_shared_again_by_its_tables_and_allocations() -> None:
    store = _store_with_two_jobs()
    snap = store.snapshot()
    data = dump_snapshot(snap, version=3)  # version 4's allocations: test_store_runs.py
    doc = msgpack.unpackb(data, raw=False, strict_map_key=False)
    assert next(iter(doc)) == "v" and doc["v"] == 3
    assert len(doc["shared"]["job"]) == 2  # two jobs (tables jobs, job_versions), eight allocations
    first_job, second_job = doc["shared"]["job"]
    assert len(first_job) > 20 and set(second_job) <= {
        "id",
        "name",
        "create_index",
        "modify_index",
        "job_modify_index",
    }
    # allocations job by job, each but the first as its difference from the one before: the
    # job's reference only where the job changes
    rows = list(doc["tables"]["allocs"].items())
    assert [k.rsplit("-", 1)[0] for k, _ in rows] in (
        ["job-0"] * 4 + ["job-1"] * 4,
        ["job-1"] * 4 + ["job-0"] * 4,
    )
    assert [isinstance(row.get("job"), int) for _, row in rows] == [True, False, False, False] * 2
    assert len(rows[0][1]) > 25  # the first whole
    assert all(len(row) < 12 for _, row in rows[1:])  # then a few fields each

    restored = StateStore()
    restored.restore(data)
    after = restored.snapshot()
    assert after.index == snap.index
    assert dict(after.indexes()) == dict(snap.indexes())
    for name in snap.table_names():
        assert dict(after.table(name)) == dict(snap.table(name)) or name.startswith("allocs_by"), name
    for job_id in ("job-0", "job-1"):
        rows = store_allocs.allocs_by_job(after, "default", job_id)
        assert len(rows) == 4
        job = store_jobs.get_job(after, "default", job_id)
        assert job is not None and job.id == job_id
        assert all(a.job is job for a in rows)  # one object again, as before the dump
        assert store_jobs.job_versions(after, "default", job_id)[0] is job
        assert rows == store_allocs.allocs_by_job(snap, "default", job_id)
        # what the rows of a job have in common is one object again
        assert len({id(a.allocated_resources) for a in rows}) == 1
    jobs = [store_jobs.get_job(after, "default", job_id) for job_id in ("job-0", "job-1")]
    assert jobs[0] is not None and jobs[1] is not None
    assert jobs[0].task_groups is jobs[1].task_groups  # what the jobs have in common is one object
    assert after.get("t_dump", "plain") == [1, "two"]
    assert dump_snapshot(after) == dump_snapshot(restored.snapshot())


def test_a_version_2_dump_is_still_restored() -> None:
    store = _store_with_two_jobs()
    snap = store.snapshot()
    old = dump_snapshot(snap, version=2)
    doc = msgpack.unpackb(old, raw=False, strict_map_key=False)
    assert doc["v"] == 2 and all(isinstance(row["job"], int) for row in doc["tables"]["allocs"].values())
    restored = StateStore()
    restored.restore(old)
    after = restored.snapshot()
    for name in snap.table_names():
        assert dict(after.table(name)) == dict(snap.table(name)) or name.startswith("allocs_by"), name
    assert dump_snapshot(after) == dump_snapshot(snap)


def test_a_version_1_dump_is_still_restored() -> None:
    alloc = placed_allocs(1)[0]
    old = msgpack.packb(
        {
            "v": 1,
            "latest": 7,
            "indexes": {"allocs": 7},
            "tables": {"allocs": {alloc.id: to_wire(alloc)}, "t_dump": {"x": 1}},
        },
        use_bin_type=True,
    )
    store = StateStore()
    store.restore(old)
    snap = store.snapshot()
    assert snap.index == 7
    assert snap.get("allocs", alloc.id) == alloc
    assert snap.get("t_dump", "x") == 1


@pytest.mark.parametrize(
    "mangle",
    [
        lambda d: d[: len(d) // 2],  # truncated
        lambda d: b"\xc1" + d,  # not msgpack
        lambda d: b"",
        lambda d: msgpack.packb({"v": 5, "latest": 1, "indexes": {}, "tables": {}}),  # unknown version
        lambda d: msgpack.packb({"v": 2, "latest": 1, "indexes": {}, "shared": {}, "tables": {"nope": {}}}),
        lambda d: d.replace(b"\xa6shared", b"\xa6sharex"),  # rows refer to objects the dump lacks
        lambda d: msgpack.packb({"v": 2, "latest": 1, "tables": {}}),  # no indexes
    ],
)
def test_a_bad_dump_is_a_value_error(mangle: object) -> None:
    data = dump_snapshot(_store_with_two_jobs().snapshot())
    bad = mangle(data)  # type: ignore[operator]
    store = StateStore()
    with pytest.raises(ValueError, match="state dump"):
        decode_dump(bad)
    with pytest.raises(ValueError, match="state dump"):
        store.restore(bad)
    assert store.latest_index() == 0


def test_a_restore_leaves_the_collector_on_and_nothing_of_the_state_for_it_to_walk() -> None:
    """A restore pauses the cyclic GC and freezes what it built: turned back on, the collector
    would otherwise walk every restored object at once, holding the GIL (seconds at 1,000,000
    allocations). Behaviour, not time: the young generation is empty of them."""
    source = StateStore()
    with source.write(1) as txn:
        for i in range(5000):
            txn.put("t_dump", f"k{i}", {"n": [i, str(i)]})  # 3 tracked objects a row
    data = source.dump()
    gc.collect()
    assert gc.isenabled()
    frozen = gc.get_freeze_count()
    try:
        restored = StateStore()
        restored.restore(data)
        assert gc.isenabled()
        assert gc.get_count()[0] < 1000, gc.get_count()
        assert gc.get_freeze_count() >= frozen + 10_000
        assert restored.get("t_dump", "k7") == {"n": [7, "7"]}
    finally:
        gc.unfreeze()


def test_an_update_replaces_the_allocation_in_its_index_rows_before_and_after_a_restore() -> None:
    from nomadd.structs.alloc import AllocClientStatus
    from nomadd.structs.requests.node import AllocClientUpdate

    store = _store_with_two_jobs()
    restored = StateStore()
    restored.restore(store.dump())  # index rows are IDs now
    for s in (store, restored):
        for index, status in ((100, AllocClientStatus.RUNNING), (101, AllocClientStatus.COMPLETE)):
            with s.write(index) as txn:
                store_allocs.update_client_locked(
                    txn, [AllocClientUpdate(id="job-0-1", client_status=status)], 1
                )
            snap = s.snapshot()
            alloc = store_allocs.get_alloc(snap, "job-0-1")
            assert alloc is not None and alloc.client_status == status
            by_job = store_allocs.allocs_by_job(snap, "default", "job-0")
            by_node = store_allocs.allocs_by_node(snap, alloc.node_id)
            assert [a.id for a in by_job].count("job-0-1") == 1 and len(by_job) == 4
            assert [a.id for a in by_node].count("job-0-1") == 1
            assert alloc in by_job and alloc in by_node


def test_a_dump_goes_out_in_small_pieces_and_reads_back_from_a_file() -> None:
    """The writer hands the dump out as it encodes it (a Raft dump goes straight into its file:
    nothing of the size of the dump is held), and the reader takes a file."""
    store = _store_with_two_jobs()
    with store.write(20) as txn:
        for i in range(20_000):
            txn.put("t_dump", f"k{i}", ["x" * 40, i])
    pieces: list[bytes] = []
    write_dump(store.snapshot(), pieces.append)
    whole = b"".join(pieces)
    assert len(pieces) > 10 and max(map(len, pieces)) < len(whole) / 5
    assert whole == dump_snapshot(store.snapshot())
    doc, tables = decode_dump_stream(dump_reader(io.BytesIO(whole)))
    assert doc["latest"] == 20
    assert tables["t_dump"]["k7"] == ["x" * 40, 7]
    assert tables["allocs"]["job-1-0"].job is tables["jobs"][store_jobs.job_key("default", "job-1")]
