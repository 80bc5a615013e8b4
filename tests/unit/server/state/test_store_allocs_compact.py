"""Stored allocations are compact and unchanged: the compact form equals the original field by
field, and a dump + restore gives back every allocation as it was, compact
(``store_allocs._decode``), the rows of one job version sharing one job object."""

from __future__ import annotations

import dataclasses
import math
import sys

from nomadd.scheduler.testing import mock_job
from nomadd.server.state import store_allocs, store_jobs
from nomadd.server.state.store import StateStore
from nomadd.structs.alloc import Allocation, AllocMetric, TaskState, compact_alloc, compact_metric
from nomadd.structs.codec import to_wire
from nomadd.structs.job import JobType
from nomadd.structs.resources import (
    AllocatedCpuResources,
    AllocatedResources,
    AllocatedSharedResources,
    AllocatedTaskResources,
    NetworkResource,
)
from tests.unit.server.test_fsm_differential import first_difference


def _alloc(i: int, job_id: str, node: int, **kw: object) -> Allocation:
    alloc = Allocation(
        id=f"00000000-0000-4000-8000-{i:012d}",
        eval_id=f"eval-{job_id}",
        name=f"{job_id}.web[{i}]",
        node_id=f"node-{node}",
        node_name=f"n{node}",
        job_id=job_id,
        job_type="service",
        task_group="web",
        allocated_resources=AllocatedResources(
            tasks={"t": AllocatedTaskResources(cpu=AllocatedCpuResources(cpu_shares=100))}
        ),
        metrics=AllocMetric(
            nodes_evaluated=3,
            nodes_in_pool=5000,
            scores={f"node-{node}.normalized-score": 0.5 + i / 1000},
            dimension_exhausted={"memory": 1} if i % 3 == 0 else {},
        ),
    )
    return dataclasses.replace(alloc, **kw)  # type: ignore[arg-type]


def _store() -> StateStore:
    """Two jobs (one of them in two versions); their allocations interleaved and varied."""
    s = StateStore()
    with s.write(10) as txn:
        a1, _ = store_jobs.upsert_job_locked(txn, mock_job("a", count=3), 1)
        b1, _ = store_jobs.upsert_job_locked(txn, mock_job("b", count=2), 1)
    with s.write(11) as txn:
        a2, _ = store_jobs.upsert_job_locked(txn, mock_job("a", count=4), 2)
    allocs = [
        _alloc(1, "a", 1, job=a1),
        _alloc(2, "a", 2, job=a1),
        _alloc(3, "b", 1, job=b1, task_states={"t": TaskState(restarts=2)}),
        _alloc(4, "a", 3, job=a2, client_description="running"),
        _alloc(5, "a", 3, job=a2, allocated_resources=AllocatedResources()),
        _alloc(7, "a", 1, job=None),
        _alloc(6, "b", 2, job=b1, metrics=None),
        _alloc(8, "a", 2, job=a1),  # the last row's job is the first's (a second dump starts anew)
    ]
    with s.write(12) as txn:
        for a in allocs:
            store_allocs.put_locked(txn, a)
    return s


def test_compact_alloc_is_equal_and_shares_empty_maps() -> None:
    a = _alloc(1, "a", 1)
    c = compact_alloc(a)
    assert first_difference(a, c) is None
    b = compact_alloc(_alloc(2, "a", 2))
    assert c.task_states is b.task_states  # the one shared empty map
    assert c.metrics is not None and b.metrics is not None
    assert c.metrics.class_filtered is b.metrics.nodes_available
    assert next(iter(c.metrics.scores)) is next(iter(compact_alloc(_alloc(9, "b", 1)).metrics.scores))  # type: ignore[union-attr]


def test_restore_gives_back_every_allocation_field_by_field() -> None:
    s = _store()
    restored = StateStore()
    restored.restore(s.dump())
    before, after = s.snapshot(), restored.snapshot()
    for table in (store_allocs.TABLE, store_jobs.TABLE, store_jobs.VERSIONS_TABLE):
        rows = before.table(table)
        assert set(rows.keys()) == set(after.table(table).keys())
        for key, row in rows.items():
            assert first_difference(row, after.get(table, key)) is None, (table, key)


def test_restored_rows_of_a_job_version_share_the_stored_job() -> None:
    restored = StateStore()
    restored.restore(_store().dump())
    snap = restored.snapshot()
    a = store_jobs.get_job(snap, "default", "a")
    assert a is not None
    assert store_jobs.job_versions(snap, "default", "a")[0] is a
    by_id = {x.id[-1]: x for x in store_allocs.list_allocs(snap)}
    assert by_id["4"].job is a and by_id["5"].job is a
    old = store_jobs.job_versions(snap, "default", "a")[1]
    assert by_id["1"].job is old and by_id["2"].job is old
    rows = snap.get(store_allocs.BY_JOB_TABLE, store_jobs.job_key("default", "a"))
    assert rows is not None and any(r is by_id["1"].id for chunk in rows for r in chunk)  # one ID string


def test_decode_after_a_row_of_other_fields_takes_the_defaults() -> None:
    """A row whose wire form lacks a field (written by an older version) gets its default, not
    the field of the row decoded before it."""
    full = to_wire(_alloc(1, "a", 1, client_description="first"))
    store_allocs._decode(full)
    older = to_wire(_alloc(2, "a", 1))
    del older["client_description"]
    assert store_allocs._decode(older).client_description == ""
    again = to_wire(dataclasses.replace(_alloc(3, "a", 1), desired_description="x"))
    assert store_allocs._decode(again).desired_description == "x"


def test_compact_metric_shares_numbers_and_maps_without_changing_them() -> None:
    m1 = compact_metric(
        AllocMetric(nodes_in_pool=1000, scores={"n1.s": 1000.0, "n2.s": -0.0}, dimension_exhausted={"cpu": 2})
    )
    m2 = compact_metric(
        AllocMetric(nodes_in_pool=1000, scores={"n3.s": 1000.0}, dimension_exhausted={"cpu": 2})
    )
    assert type(m1.scores["n1.s"]) is float and type(m1.nodes_in_pool) is int
    assert math.copysign(1.0, m1.scores["n2.s"]) == -1.0
    zero = compact_metric(AllocMetric(scores={"n1.s": 0.0, "n2.s": -0.0}))  # equal, not the same
    assert [math.copysign(1.0, v) for v in zero.scores.values()] == [1.0, -1.0]
    assert m1.scores["n1.s"] is m2.scores["n3.s"]
    assert m1.dimension_exhausted is m2.dimension_exhausted
    m3 = compact_metric(AllocMetric(dimension_exhausted={"cpu": 3}))
    assert m3.dimension_exhausted == {"cpu": 3}
    odd = compact_metric(AllocMetric(scores={"n1.s": 2, "n2.s": math.nan, "n3.s": 2.0}))  # type: ignore[dict-item]
    assert [type(v) for v in odd.scores.values()] == [int, float, float] and math.isnan(odd.scores["n2.s"])
    enum_key = compact_metric(AllocMetric(scores={JobType.BATCH: 1.5, "n1.s": 1.5}))
    assert type(next(iter(enum_key.scores))) is JobType and enum_key.scores == {"batch": 1.5, "n1.s": 1.5}


def _resources(cpu: int, dns: object = None) -> AllocatedResources:
    net = NetworkResource(ip="10.0.0.1", dns=dns)
    return AllocatedResources(
        tasks={"t": AllocatedTaskResources(cpu=AllocatedCpuResources(cpu_shares=cpu))},
        shared=AllocatedSharedResources(disk_mb=300, networks=(net,)),
    )


def test_equal_resources_are_shared_and_others_kept() -> None:
    a = compact_alloc(_alloc(1, "a", 1, allocated_resources=_resources(100)))
    b = compact_alloc(_alloc(2, "b", 2, allocated_resources=_resources(100)))
    c = compact_alloc(_alloc(3, "b", 2, allocated_resources=_resources(200)))
    assert a.allocated_resources is b.allocated_resources
    assert c.allocated_resources == _resources(200)
    dns = {"Servers": ["1.1.1.1"]}  # a free-form value: not hashable, kept as it is
    d = compact_alloc(_alloc(4, "b", 2, allocated_resources=_resources(100, dns)))
    assert d.allocated_resources == _resources(100, dns)


def test_compact_alloc_keeps_a_str_subclass_value() -> None:
    a = compact_alloc(_alloc(1, "a", 1, job_type=JobType.SERVICE))
    assert a.job_type is JobType.SERVICE


def test_restored_allocations_are_stored_compact() -> None:
    """Each restored allocation is what :func:`compact_alloc` makes of it, field for field the
    same objects: its strings interned, its empty maps, resources and metric maps shared, its
    score keys interned (a version 3 row is read over the row before, compacting only what it
    reads: the fields it leaves out are the compact ones of the row before)."""
    restored = StateStore()
    restored.restore(_store().dump())
    allocs = store_allocs.list_allocs(restored.snapshot())
    assert len(allocs) == 8
    for a in allocs:
        c = compact_alloc(a)
        for f in dataclasses.fields(Allocation):
            if f.name != "metrics":
                assert getattr(a, f.name) is getattr(c, f.name), (a.id, f.name)
        assert a.id is sys.intern(a.id)
        if a.metrics is not None:
            assert c.metrics is not None
            for f in dataclasses.fields(AllocMetric):
                if f.name != "scores":  # a map of its own, of shared keys and numbers
                    assert getattr(a.metrics, f.name) is getattr(c.metrics, f.name), (a.id, f.name)
            pairs = zip(a.metrics.scores.items(), c.metrics.scores.items(), strict=True)
            assert all(ka is kc and va is vc for (ka, va), (kc, vc) in pairs), a.id


def test_a_restored_allocation_is_stored_under_its_own_id_string() -> None:
    """One ID string per allocation, as when the FSM stored it: the table's key, the row's ID
    and the index rows' entries are one object, not two equal strings."""
    restored = StateStore()
    restored.restore(_store().dump())
    snap = restored.snapshot()
    keys = list(snap.table(store_allocs.TABLE).keys())
    assert keys
    for k in keys:
        a = snap.get(store_allocs.TABLE, k)
        assert a is not None and a.id is k
    by_job = [r for row in snap.table(store_allocs.BY_JOB_TABLE).values() for chunk in row for r in chunk]
    assert by_job and all(any(r is k for k in keys) for r in by_job)
