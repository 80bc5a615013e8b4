from __future__ import annotations

import dataclasses

from nomadd.scheduler.context import ALLOC_LOST, ALLOC_NODE_TAINTED, ALLOC_UPDATING
from nomadd.scheduler.testing import Harness, mock_job
from nomadd.structs.alloc import AllocClientStatus, AllocDesiredStatus
from nomadd.structs.constraint import Constraint
from nomadd.structs.eval import EvalStatus, EvalTrigger
from nomadd.structs.job import Job, JobType
from nomadd.structs.node import DrainStrategy, NodeEligibility, NodeStatus
from nomadd.structs.policy import UpdateStrategy
from nomadd.structs.timeutil import NS_PER_S, parse_time


def system_job(cpu: int = 100, **kw: object) -> Job:
    return mock_job("sys", count=1, job_type=JobType.SYSTEM, cpu=cpu, memory_mb=64, **kw)


def node_ids(h: Harness) -> set[str]:
    return {a.node_id for a in h.live_allocs("sys")}


def test_one_alloc_per_ready_node() -> None:
    h = Harness()
    ready = {h.add_node().id for _ in range(4)}
    h.add_node(status=NodeStatus.DOWN)
    h.add_node(scheduling_eligibility=NodeEligibility.INELIGIBLE)
    h.add_node(datacenter="dc9")
    ev = h.run(system_job())
    assert node_ids(h) == ready
    assert len(h.live_allocs("sys")) == 4
    assert {a.name for a in h.live_allocs("sys")} == {"sys.web[0]"}
    assert ev.status == EvalStatus.COMPLETE
    assert ev.queued_allocations == {"web": 0}
    # idempotent
    h.process(h.make_eval(h.job("sys")))
    assert len(h.plans) == 1


def test_node_joining_later_gets_one() -> None:
    h = Harness()
    first = h.add_node().id
    h.run(system_job())
    late = h.add_node().id
    h.process(h.make_eval(h.job("sys"), EvalTrigger.NODE_UPDATE, node_id=late))
    assert node_ids(h) == {first, late}
    assert len(h.live_allocs("sys")) == 2


def test_constraint_limits_nodes() -> None:
    h = Harness()
    linux = h.add_node().id
    h.add_node(attributes={"kernel.name": "windows"})
    h.run(system_job(constraints=(Constraint(l_target="${attr.kernel.name}", r_target="linux"),)))
    assert node_ids(h) == {linux}
    # infeasible nodes are not failures
    assert h.updated_evals[-1].failed_tg_allocs == {}


def test_down_node_allocs_lost_not_replaced() -> None:
    h = Harness()
    a, b = h.add_node().id, h.add_node().id
    h.run(system_job())
    h.update_node(a, status=NodeStatus.DOWN)
    h.process(h.make_eval(h.job("sys"), EvalTrigger.NODE_UPDATE, node_id=a))
    assert node_ids(h) == {b}
    lost = [x for x in h.all_allocs("sys") if x.node_id == a]
    assert lost[0].client_status == AllocClientStatus.LOST
    assert lost[0].desired_description == ALLOC_LOST
    assert len(h.live_allocs("sys")) == 1


def test_drain_stops_unless_ignored() -> None:
    h = Harness()
    a, b = h.add_node().id, h.add_node().id
    h.run(system_job())
    h.update_node(a, drain_strategy=DrainStrategy(ignore_system_jobs=True))
    h.process(h.make_eval(h.job("sys"), EvalTrigger.NODE_DRAIN, node_id=a))
    assert node_ids(h) == {a, b}
    h.update_node(a, drain_strategy=DrainStrategy())
    h.process(h.make_eval(h.job("sys"), EvalTrigger.NODE_DRAIN, node_id=a))
    assert node_ids(h) == {a, b}  # system allocations go last: only once the drainer marks them
    h.mark_migrate(a)
    h.process(h.make_eval(h.job("sys"), EvalTrigger.NODE_DRAIN, node_id=a))
    assert node_ids(h) == {b}
    stopped = next(x for x in h.all_allocs("sys") if x.node_id == a)
    assert stopped.desired_description == ALLOC_NODE_TAINTED


def test_ineligible_node_stops_alloc() -> None:
    h = Harness()
    a, b = h.add_node().id, h.add_node().id
    h.run(system_job())
    h.update_node(a, scheduling_eligibility=NodeEligibility.INELIGIBLE)
    h.process(h.make_eval(h.job("sys"), EvalTrigger.NODE_UPDATE, node_id=a))
    assert node_ids(h) == {b}


def test_job_stop() -> None:
    h = Harness()
    h.add_node()
    h.add_node()
    h.run(system_job())
    job = h.upsert_job(dataclasses.replace(h.job("sys"), stop=True))
    h.process(h.make_eval(job, EvalTrigger.JOB_DEREGISTER))
    assert h.live_allocs("sys") == []


def test_update_destructive_on_same_node() -> None:
    h = Harness()
    a = h.add_node().id
    h.run(system_job())
    old = h.live_allocs("sys")[0]
    job = h.job("sys")
    tg = job.task_groups[0]
    task = dataclasses.replace(tg.tasks[0], env={"V": "2"})
    job = h.upsert_job(dataclasses.replace(job, task_groups=(dataclasses.replace(tg, tasks=(task,)),)))
    h.process(h.make_eval(job))
    live = h.live_allocs("sys")
    assert len(live) == 1
    assert live[0].id != old.id
    assert live[0].node_id == a
    assert live[0].previous_allocation == old.id
    assert h.alloc(old.id).desired_description == ALLOC_UPDATING


def test_exhausted_node_reports_failure_without_blocked_eval() -> None:
    h = Harness()
    h.add_node()
    h.add_node()
    ev = h.run(system_job(cpu=5000))
    assert h.live_allocs("sys") == []
    assert ev.queued_allocations == {"web": 2}
    metric = ev.failed_tg_allocs["web"]
    assert metric.dimension_exhausted == {"cpu": 1}
    assert metric.coalesced_failures == 1
    assert ev.blocked_eval == ""
    assert h.created_evals == []


def test_failed_system_alloc_not_replaced() -> None:
    h = Harness()
    h.add_node()
    h.run(system_job())
    a = h.live_allocs("sys")[0]
    h.set_client_status(a.id, AllocClientStatus.FAILED)
    h.process(h.make_eval(h.job("sys"), EvalTrigger.ALLOC_FAILURE))
    assert h.live_allocs("sys") == []
    assert h.alloc(a.id).desired_status == AllocDesiredStatus.RUN


def test_update_that_does_not_fit_keeps_old_version() -> None:
    h = Harness()
    h.add_node()
    h.run(system_job(cpu=3000))
    old = h.live_allocs("sys")[0]
    job = h.job("sys")
    tg = job.task_groups[0]
    task = dataclasses.replace(tg.tasks[0], resources=dataclasses.replace(tg.tasks[0].resources, cpu=5000))
    job = h.upsert_job(dataclasses.replace(job, task_groups=(dataclasses.replace(tg, tasks=(task,)),)))
    ev = h.make_eval(job)
    h.process(ev)
    assert [a.id for a in h.live_allocs("sys")] == [old.id]
    assert h.evals[ev.id].queued_allocations == {"web": 1}


def test_destructive_update_goes_max_parallel_at_a_time_with_stagger() -> None:
    """Nomad's system scheduler under ``update { max_parallel = 2, stagger = "10s" }``: two
    allocations are replaced per evaluation, and a ``rolling-update`` follow-up waits the stagger."""
    h = Harness()
    for _ in range(5):
        h.add_node()
    strategy = UpdateStrategy(max_parallel=2, stagger=10 * NS_PER_S)
    h.run(system_job(update=strategy))
    job = h.job("sys")
    tg = job.task_groups[0]
    task = dataclasses.replace(tg.tasks[0], env={"V": "2"})
    job = h.upsert_job(dataclasses.replace(job, task_groups=(dataclasses.replace(tg, tasks=(task,)),)))
    seen: list[int] = []
    ev = h.make_eval(job)
    for _ in range(5):
        h.process(ev)
        seen.append(sum(a.job_version == job.version for a in h.live_allocs("sys")))
        assert len(h.live_allocs("sys")) == 5  # the others stay on the old version meanwhile
        done = h.evals[ev.id]
        if not done.next_eval:
            break
        follow = h.evals[done.next_eval]
        assert follow.triggered_by == EvalTrigger.ROLLING_UPDATE and follow.previous_eval == ev.id
        assert follow.wait == 10 * NS_PER_S and parse_time(follow.wait_until) == h.now + 10 * NS_PER_S
        ev = follow
    assert seen == [2, 4, 5]


def test_without_stagger_a_system_update_replaces_every_allocation_at_once() -> None:
    h = Harness()
    for _ in range(3):
        h.add_node()
    h.run(system_job(update=UpdateStrategy(max_parallel=1, stagger=0)))
    job = h.job("sys")
    tg = job.task_groups[0]
    task = dataclasses.replace(tg.tasks[0], env={"V": "2"})
    job = h.upsert_job(dataclasses.replace(job, task_groups=(dataclasses.replace(tg, tasks=(task,)),)))
    ev = h.make_eval(job)
    h.process(ev)
    assert all(a.job_version == job.version for a in h.live_allocs("sys")) and not h.evals[ev.id].next_eval
