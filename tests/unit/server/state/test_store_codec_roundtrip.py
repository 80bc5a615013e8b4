"""The dump round trip as a property: any store of allocations, dumped and restored, reads back
equal field by field, strictly: the same types, dict keys in the same order, -0.0 kept apart
from 0.0 (``==`` alone would take a map in another order, or -0.0, for the same value). Rows
are dumped one after the other and may be decoded over the row before (shared fields), which
is where a decoder can take a value from the wrong row."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nomadd.scheduler.testing import mock_job
from nomadd.server.state import store_allocs, store_evals, store_jobs
from nomadd.server.state.store import StateStore, dump_snapshot
from nomadd.structs.alloc import Allocation, AllocClientStatus, AllocMetric, TaskState
from nomadd.structs.eval import EvalStatus, Evaluation
from nomadd.structs.job import Job


def assert_same(a: Any, b: Any, path: str = "") -> None:
    """``a`` and ``b`` equal strictly: type by type, map keys in order, floats bit for bit."""
    assert type(a) is type(b), (path, a, b)
    if isinstance(a, float):
        assert a == b or (math.isnan(a) and math.isnan(b)), (path, a, b)
        assert math.copysign(1.0, a) == math.copysign(1.0, b), (path, a, b)
    elif dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            assert_same(getattr(a, f.name), getattr(b, f.name), f"{path}.{f.name}")
    elif isinstance(a, Mapping):
        assert list(a) == list(b), (path, list(a), list(b))
        for k in a:
            assert_same(a[k], b[k], f"{path}[{k!r}]")
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b), (path, a, b)
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{path}[{i}]")
    else:
        assert a == b, (path, a, b)


_KEYS = ("n1.binpack", "n2.binpack", "n3.binpack")
# few values and orders, so that rows next to each other are often equal but for an order or a sign
_scores = st.tuples(
    st.permutations(_KEYS), st.lists(st.sampled_from([0.0, -0.0, 0.5]), min_size=3, max_size=3)
).map(lambda kv: dict(zip(*kv, strict=True)))
_counts = st.permutations(("dc1", "dc2")).map(lambda keys: dict.fromkeys(keys, 1))
_task_states = st.lists(
    st.tuples(
        st.sampled_from(("web", "db")), st.builds(TaskState, restarts=st.integers(0, 2), failed=st.booleans())
    ),
    max_size=2,
    unique_by=lambda kv: kv[0],
).map(dict)
_metrics = st.none() | st.builds(
    AllocMetric,
    nodes_evaluated=st.integers(0, 3),
    nodes_available=_counts,
    scores=_scores,
)
_alloc_fields = st.fixed_dictionaries(
    {
        "job": st.integers(0, 2),
        "node": st.sampled_from(("n1", "n2", "n3")),
        "status": st.sampled_from((AllocClientStatus.PENDING, AllocClientStatus.RUNNING)),
        "desc": st.sampled_from(("", "placed", "running")),
        "task_states": _task_states,
        "metrics": _metrics,
        "previous": st.sampled_from(("", "a-0")),
        "queued": st.permutations(("web", "db")).map(lambda keys: dict.fromkeys(keys, 0)),
        "failed": st.none() | _metrics,
        "eval_status": st.sampled_from((EvalStatus.PENDING, EvalStatus.COMPLETE)),
    }
)


def _jobs() -> list[Job]:
    base = mock_job(count=1)
    return [dataclasses.replace(base, id=f"job-{n}", name=f"job-{n}") for n in range(3)]


def _store(rows: list[dict[str, Any]]) -> StateStore:
    store = StateStore()
    with store.write(5) as txn:
        jobs = [store_jobs.upsert_job_locked(txn, job, submit_time=1)[0] for job in _jobs()]
        for i, f in enumerate(rows):
            job = jobs[f["job"]]
            alloc = Allocation(
                id=f"a-{i}",
                job_id=job.id,
                job=job,
                task_group=job.task_groups[0].name,
                name=f"{job.id}.{job.task_groups[0].name}[{i}]",
                node_id=f["node"],
                client_status=f["status"],
                client_description=f["desc"],
                task_states=f["task_states"],
                metrics=f["metrics"],
                previous_allocation=f["previous"],
                create_index=5,
                modify_index=5,
            )
            store_allocs.put_locked(txn, alloc)
            ev = Evaluation(
                id=f"e-{i}",
                job_id=job.id,
                status=f["eval_status"],
                queued_allocations=f["queued"],
                failed_tg_allocs={} if f["failed"] is None else {"web": f["failed"]},
            )
            store_evals.upsert_evals_locked(txn, [ev])
    return store


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(_alloc_fields, min_size=1, max_size=12))
def test_a_dump_restores_every_allocation_and_evaluation_strictly_equal(rows: list[dict[str, Any]]) -> None:
    store = _store(rows)
    snap = store.snapshot()
    for version in (2, 3):  # the version written now, and the one before (still read)
        restored = StateStore()
        restored.restore(dump_snapshot(snap, version=version))
        after = restored.snapshot()
        for i in range(len(rows)):
            before = snap.get(store_allocs.TABLE, f"a-{i}")
            got = after.get(store_allocs.TABLE, f"a-{i}")
            assert_same(got, before, f"v{version} a-{i}")
            assert got.job is store_jobs.get_job(after, "default", got.job_id)
            assert_same(
                after.get(store_evals.TABLE, f"e-{i}"),
                snap.get(store_evals.TABLE, f"e-{i}"),
                f"v{version} e-{i}",
            )
