"""``sysbatch``: one allocation per feasible node, run to completion and not run again for the
same job version; a node that joins later gets one; a new version runs again everywhere."""

from __future__ import annotations

import dataclasses

from nomadd.scheduler.testing import Harness, mock_job
from nomadd.structs.alloc import AllocClientStatus
from nomadd.structs.eval import EvalTrigger
from nomadd.structs.job import Job, JobType
from nomadd.structs.policy import default_restart_policy


def sysbatch_job(**kw: object) -> Job:
    return mock_job("sb", count=1, job_type=JobType.SYSBATCH, cpu=100, memory_mb=64, **kw)


def test_sysbatch_runs_once_per_node_and_again_for_a_new_version() -> None:
    h = Harness()
    nodes = [h.add_node().id for _ in range(2)]
    job = sysbatch_job()
    assert job.task_groups[0].restart_policy == default_restart_policy("batch")
    assert job.task_groups[0].reschedule_policy is None
    h.run(job)
    first = h.live_allocs("sb")
    assert sorted(a.node_id for a in first) == sorted(nodes)
    for a in first:
        h.set_client_status(a.id, AllocClientStatus.COMPLETE)
    h.process(h.make_eval(h.job("sb"), EvalTrigger.NODE_UPDATE))
    assert h.live_allocs("sb") == []  # completed: not replaced

    late = h.add_node().id
    h.process(h.make_eval(h.job("sb"), EvalTrigger.NODE_UPDATE, node_id=late))
    assert [a.node_id for a in h.live_allocs("sb")] == [late]

    h.run(dataclasses.replace(h.job("sb"), meta={"v": "2"}))
    again = h.live_allocs("sb")
    assert sorted(a.node_id for a in again if a.node_id != late) == sorted(nodes)  # re-run there
    assert all(a.job_version == 1 for a in again if a.node_id != late)


def test_system_jobs_still_never_rerun_finished_allocations() -> None:
    h = Harness()
    h.add_node()
    h.run(mock_job("sys", count=1, job_type=JobType.SYSTEM, cpu=100, memory_mb=64))
    (alloc,) = h.live_allocs("sys")
    h.set_client_status(alloc.id, AllocClientStatus.COMPLETE)
    h.process(h.make_eval(h.job("sys"), EvalTrigger.NODE_UPDATE))
    assert h.live_allocs("sys") == []
