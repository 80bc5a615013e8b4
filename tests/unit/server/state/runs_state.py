"""A state whose allocations a version 4 dump writes as runs, with rows that do not fit
(test_store_runs, test_store_reuse)."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable

from nomadd.scheduler.testing import Harness, mock_job
from nomadd.server.state import store_allocs, store_jobs
from nomadd.server.state.store import StateStore
from nomadd.structs.alloc import Allocation

SEED = 20261204


def placed_allocs(count: int, nodes: int = 3) -> list[Allocation]:
    """The allocations of one job of ``count`` placed by the scheduler over ``nodes`` nodes."""
    h = Harness()
    for _ in range(nodes):
        h.add_node()
    ev = h.register(mock_job(count=count))
    h.process(ev)
    return list(h.live_allocs(ev.job_id))


def jobs_store(
    placed: list[Allocation], jobs: int, edit: Callable[[int, Allocation], Allocation] | None = None
) -> tuple[StateStore, int]:
    """A store of ``jobs`` jobs (``job-0``, ``job-1``, ...), each written at its own index from
    11 with a copy of ``placed`` as its allocations (IDs ``<job>-<i>``, the job the stored one),
    each changed by ``edit(i, allocation)`` first; and the last index written."""
    store = StateStore()
    index = 10
    for n in range(jobs):
        job_id = f"job-{n}"
        job = dataclasses.replace(placed[0].job, id=job_id, name=job_id)
        index += 1
        batch = [
            dataclasses.replace(a, id=f"{job_id}-{i}", job_id=job_id, job=None) for i, a in enumerate(placed)
        ]
        if edit is not None:
            batch = [edit(i, a) for i, a in enumerate(batch)]
        with store.write(index) as txn:
            stored, _ = store_jobs.upsert_job_locked(txn, job, submit_time=1)
            store_allocs.upsert_plan_locked(txn, stored, batch, ())
    return store, index


def runs_store(seed: int = SEED) -> StateStore:
    """Three jobs placed over eight nodes (each allocation its own node, scores, metric), then
    some allocations changed so they no longer fit a run: no metric, other counts, a client
    status, a -0.0 score and an int score."""
    rng = random.Random(seed)

    def edit(i: int, a: Allocation) -> Allocation:
        a = dataclasses.replace(a, id=f"{a.job_id}-{i:02d}", name=f"{a.job_id}.g[{i}]")
        m = a.metrics
        assert m is not None
        scores = {k: rng.random() for k in m.scores} or {f"{a.node_id}.binpack": rng.random()}
        if i == 3:
            scores[next(iter(scores))] = -0.0
        if i == 4:
            scores[next(iter(scores))] = 7
        m = dataclasses.replace(m, scores=scores, nodes_evaluated=rng.randint(1, 8), allocation_time=i)
        if i == 5:
            m = dataclasses.replace(m, nodes_filtered=3)  # a field the columns do not carry
        a = dataclasses.replace(a, metrics=None if i == 7 else m)
        if i == 9:
            a = dataclasses.replace(a, client_description="changed")
        return a

    return jobs_store(placed_allocs(12, nodes=8), 3, edit)[0]
