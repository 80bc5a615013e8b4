"""``upsert_plan_locked``: the index rows stay in step with the table whatever a plan holds."""

from __future__ import annotations

import dataclasses

from nomadd.scheduler.testing import mock_job
from nomadd.server.state import store_allocs, store_jobs
from nomadd.server.state.store import StateStore
from nomadd.structs.alloc import Allocation, AllocDesiredStatus


def _alloc(i: int, job_id: str, node: int, **kw: object) -> Allocation:
    alloc = Allocation(
        id=f"00000000-0000-4000-8000-{i:012d}",
        name=f"{job_id}.web[{i}]",
        node_id=f"node-{node}",
        job_id=job_id,
        task_group="web",
    )
    return dataclasses.replace(alloc, **kw)  # type: ignore[arg-type]


def _assert_rows_match_table(store: StateStore) -> None:
    """Every index row holds exactly the stored allocations of its job / node, each once, as
    the stored objects."""
    snap = store.snapshot()
    stored = snap.table(store_allocs.TABLE)
    for table, key_of in (
        (store_allocs.BY_JOB_TABLE, lambda a: store_jobs.job_key(a.namespace, a.job_id)),
        (store_allocs.BY_NODE_TABLE, lambda a: a.node_id),
    ):
        want: dict[str, list[str]] = {}
        for a in stored.values():
            want.setdefault(key_of(a), []).append(a.id)
        rows = snap.table(table)
        assert sorted(rows) == sorted(want), table
        for key, chunks in rows.items():
            row = [r for chunk in chunks for r in chunk]
            assert sorted(r.id for r in row) == sorted(want[key]), (table, key)
            assert all(r is stored[r.id] for r in row), (table, key)


def test_index_rows_hold_each_allocation_once_after_plans_that_rewrite_their_own_placements() -> None:
    store = StateStore()
    with store.write(1) as txn:
        job, _ = store_jobs.upsert_job_locked(txn, mock_job("a", count=3), 1)
    first = _alloc(1, "a", 1)
    with store.write(2) as txn:
        store_allocs.upsert_plan_locked(
            txn,
            job,
            [
                first,
                _alloc(2, "a", 2),
                # placed earlier in this same plan, then updated in place and replaced
                dataclasses.replace(first, desired_description="again"),
                _alloc(3, "a", 1, previous_allocation=first.id),
                _alloc(4, "a", 3),
            ],
            (),
        )
    _assert_rows_match_table(store)
    with store.write(3) as txn:
        store_allocs.upsert_plan_locked(
            txn,
            job,
            [_alloc(5, "a", 2), _alloc(6, "a", 2, previous_allocation=_alloc(5, "a", 2).id)],
            [_alloc(2, "a", 2, desired_status=AllocDesiredStatus.STOP)],
        )
    _assert_rows_match_table(store)
    snap = store.snapshot()
    assert store_allocs.get_alloc(snap, first.id).next_allocation == _alloc(3, "a", 1).id  # type: ignore[union-attr]
    assert len(store_allocs.allocs_by_job(snap, "default", "a")) == 6
