from __future__ import annotations

import dataclasses
from collections import Counter

from nomadd.scheduler.context import (
    ALLOC_IN_PLACE,
    ALLOC_LOST,
    ALLOC_MIGRATING,
    ALLOC_NOT_NEEDED,
    ALLOC_REPLACED,
    ALLOC_UPDATING,
)
from nomadd.scheduler.testing import Harness, mock_job
from nomadd.structs.alloc import AllocClientStatus, AllocDesiredStatus
from nomadd.structs.constraint import Constraint
from nomadd.structs.eval import EvalStatus, EvalTrigger
from nomadd.structs.job import Job
from nomadd.structs.node import DrainStrategy, NodeStatus


def cluster(n: int = 3, **kw: object) -> tuple[Harness, list[str]]:
    h = Harness()
    return h, [h.add_node(**kw).id for _ in range(n)]


def update(h: Harness, job_id: str = "web", **changes: object) -> Job:
    """Re-register a changed copy of the stored job; returns the stored new version."""
    job = dataclasses.replace(h.job(job_id), **changes)  # type: ignore[arg-type]
    return h.upsert_job(job)


def set_count(job: Job, count: int) -> Job:
    return dataclasses.replace(job, task_groups=(dataclasses.replace(job.task_groups[0], count=count),))


def test_places_count_with_names_and_spreads() -> None:
    h, _nodes = cluster(3)
    ev = h.run(mock_job(count=6))
    live = h.live_allocs("web")
    assert [a.name for a in live] == [f"web.web[{i}]" for i in range(6)]
    assert ev.status == EvalStatus.COMPLETE
    assert ev.queued_allocations == {"web": 0}
    assert ev.failed_tg_allocs == {}
    # job anti-affinity spreads a group's allocations over every node; with 3 nodes Nomad scores
    # 2 per placement and passes over nodes whose penalty takes their score to <= 0, so the
    # spread is not exactly even
    per_node = Counter(a.node_id for a in live)
    assert len(per_node) == 3
    assert max(per_node.values()) <= 3
    first = live[0]
    assert first.desired_status == AllocDesiredStatus.RUN
    assert first.client_status == AllocClientStatus.PENDING
    assert first.eval_id == ev.id
    assert first.job is not None
    assert first.job.id == "web"
    assert first.allocated_resources.comparable() == (500, 256, 300)
    assert first.metrics is not None
    assert first.metrics.nodes_evaluated >= 1
    assert h.plans[0].job is not None
    assert all(a.job is None for allocs in h.plans[0].node_allocation.values() for a in allocs)


def test_rerun_is_a_no_op() -> None:
    h, _ = cluster(2)
    h.run(mock_job(count=2))
    before = {a.id for a in h.live_allocs("web")}
    ev = h.make_eval(h.job("web"))
    h.process(ev)
    assert len(h.plans) == 1  # nothing to submit the second time
    assert {a.id for a in h.live_allocs("web")} == before
    assert h.evals[ev.id].status == EvalStatus.COMPLETE


def test_identical_reregister_keeps_version() -> None:
    h, _ = cluster(1)
    h.run(mock_job(count=1))
    again = h.upsert_job(mock_job(count=1))
    assert again.version == 0


def test_scale_up_and_down_in_place() -> None:
    h, _ = cluster(3)
    h.run(mock_job(count=3))
    ids = {a.name: a.id for a in h.live_allocs("web")}
    job = h.upsert_job(set_count(h.job("web"), 5))
    assert job.version == 1
    h.process(h.make_eval(job))
    live = h.live_allocs("web")
    assert len(live) == 5
    # the three existing allocations were updated in place, not replaced
    for a in live[:3]:
        assert ids[a.name] == a.id
        assert a.job_version == 1
        assert a.desired_description == ALLOC_IN_PLACE
    job = h.upsert_job(set_count(h.job("web"), 2))
    h.process(h.make_eval(job))
    live = h.live_allocs("web")
    assert [a.name for a in live] == ["web.web[0]", "web.web[1]"]
    stopped = [a for a in h.all_allocs("web") if a.desired_status == AllocDesiredStatus.STOP]
    assert sorted(a.name for a in stopped) == ["web.web[2]", "web.web[3]", "web.web[4]"]
    assert {a.desired_description for a in stopped} == {ALLOC_NOT_NEEDED}


def test_task_change_is_destructive() -> None:
    h, _ = cluster(2)
    h.run(mock_job(count=2))
    old = {a.id for a in h.live_allocs("web")}
    job = h.job("web")
    tg = job.task_groups[0]
    task = dataclasses.replace(tg.tasks[0], env={"VERSION": "2"})
    job = h.upsert_job(dataclasses.replace(job, task_groups=(dataclasses.replace(tg, tasks=(task,)),)))
    h.process(h.make_eval(job))
    live = h.live_allocs("web")
    assert len(live) == 2
    assert not old & {a.id for a in live}
    assert all(a.previous_allocation in old for a in live)
    for alloc_id in old:
        gone = h.alloc(alloc_id)
        assert gone.desired_status == AllocDesiredStatus.STOP
        assert gone.desired_description == ALLOC_UPDATING
        assert gone.next_allocation


def test_destructive_update_that_cannot_place_keeps_old_version() -> None:
    h, _ = cluster(1)
    h.run(mock_job(count=1, memory_mb=4096))
    old = h.live_allocs("web")[0]
    # 9000 MB fits nowhere (8192 MB nodes), even with the old version's memory freed
    job = h.job("web")
    tg = job.task_groups[0]
    bigger = dataclasses.replace(
        tg.tasks[0], resources=dataclasses.replace(tg.tasks[0].resources, memory_mb=9000)
    )
    job = h.upsert_job(dataclasses.replace(job, task_groups=(dataclasses.replace(tg, tasks=(bigger,)),)))
    ev = h.make_eval(job)
    h.process(ev)
    assert h.alloc(old.id).desired_status == AllocDesiredStatus.RUN
    assert h.evals[ev.id].queued_allocations == {"web": 1}


def test_job_stop_and_deregister_stop_everything() -> None:
    h, _ = cluster(2)
    h.run(mock_job(count=3))
    job = update(h, stop=True)
    h.process(h.make_eval(job, EvalTrigger.JOB_DEREGISTER))
    assert h.live_allocs("web") == []
    assert {a.desired_description for a in h.all_allocs("web")} == {ALLOC_NOT_NEEDED}


def test_purged_job_allocs_are_stopped() -> None:
    h, _ = cluster(1)
    ev = h.run(mock_job(count=2))
    job = h.job("web")
    h._jobs.clear()  # purge: the job is gone from state
    h.process(h.make_eval(job, EvalTrigger.JOB_DEREGISTER))
    assert h.live_allocs("web") == []
    assert ev.status == EvalStatus.COMPLETE


def test_node_down_marks_lost_and_replaces() -> None:
    h, nodes = cluster(2)
    h.run(mock_job(count=4))
    victim = nodes[0]
    on_victim = [a for a in h.live_allocs("web") if a.node_id == victim]
    assert on_victim
    h.update_node(victim, status=NodeStatus.DOWN)
    ev = h.make_eval(h.job("web"), EvalTrigger.NODE_UPDATE, node_id=victim)
    h.process(ev)
    for a in on_victim:
        lost = h.alloc(a.id)
        assert lost.client_status == AllocClientStatus.LOST
        assert lost.desired_status == AllocDesiredStatus.STOP
        assert lost.desired_description == ALLOC_LOST
        assert lost.next_allocation
    live = h.live_allocs("web")
    assert len(live) == 4
    assert {a.node_id for a in live} == {nodes[1]}
    assert sorted(a.name for a in live) == [f"web.web[{i}]" for i in range(4)]


def test_node_back_stops_replaced_allocs() -> None:
    h, nodes = cluster(2)
    h.run(mock_job(count=2))
    victim = nodes[0]
    orig = next(a for a in h.live_allocs("web") if a.node_id == victim)
    h.update_node(victim, status=NodeStatus.DOWN)
    h.process(h.make_eval(h.job("web"), EvalTrigger.NODE_UPDATE, node_id=victim))
    # Simulate a state where the old alloc still says "run" (e.g. the client reconnected and
    # reported it running before the stop reached it): it was replaced, so it must stop.
    h.upsert_allocs(
        [
            dataclasses.replace(
                h.alloc(orig.id),
                desired_status=AllocDesiredStatus.RUN,
                client_status=AllocClientStatus.RUNNING,
            )
        ]
    )
    h.update_node(victim, status=NodeStatus.READY)
    h.process(h.make_eval(h.job("web"), EvalTrigger.NODE_UPDATE, node_id=victim))
    back = h.alloc(orig.id)
    assert back.desired_status == AllocDesiredStatus.STOP
    assert back.desired_description == ALLOC_REPLACED
    assert len(h.live_allocs("web")) == 2


def test_drain_migrates() -> None:
    h, nodes = cluster(2)
    h.run(mock_job(count=2))
    drained = nodes[0]
    moving = [a for a in h.live_allocs("web") if a.node_id == drained]
    h.update_node(drained, drain_strategy=DrainStrategy(deadline=60))
    h.process(h.make_eval(h.job("web"), EvalTrigger.NODE_DRAIN, node_id=drained))
    assert {a.node_id for a in h.live_allocs("web")} == {drained, nodes[1]}  # unmarked: they stay
    h.mark_migrate(drained)  # the drainer's mark
    h.process(h.make_eval(h.job("web"), EvalTrigger.NODE_DRAIN, node_id=drained))
    for a in moving:
        assert h.alloc(a.id).desired_description == ALLOC_MIGRATING
        assert h.alloc(a.id).client_status != AllocClientStatus.LOST
    assert {a.node_id for a in h.live_allocs("web")} == {nodes[1]}


def test_no_capacity_blocks_with_metrics() -> None:
    h, _nodes = cluster(1)
    ev = h.run(mock_job(count=20, cpu=1000))  # 4000 MHz node: 4 fit
    assert len(h.live_allocs("web")) == 4
    assert ev.status == EvalStatus.COMPLETE
    assert ev.queued_allocations == {"web": 16}
    metric = ev.failed_tg_allocs["web"]
    assert metric.nodes_exhausted == 1
    assert metric.dimension_exhausted == {"cpu": 1}
    assert metric.coalesced_failures == 15
    assert metric.nodes_available == {"dc1": 1}
    blocked = h.evals[ev.blocked_eval]
    assert blocked.status == EvalStatus.BLOCKED
    assert blocked.triggered_by == EvalTrigger.QUEUED_ALLOCS
    assert blocked.previous_eval == ev.id
    assert blocked.queued_allocations == {"web": 16}
    assert h.created_evals == [blocked]


def test_blocked_eval_places_when_capacity_appears() -> None:
    h, _ = cluster(1)
    ev = h.run(mock_job(count=6, cpu=1000))
    blocked = h.evals[ev.blocked_eval]
    # still no room: the blocked eval goes back to the tracker
    h.process(blocked)
    assert h.reblocked_evals[-1].id == blocked.id
    assert h.reblocked_evals[-1].queued_allocations == {"web": 2}
    h.add_node()
    h.process(blocked)
    assert len(h.live_allocs("web")) == 6
    assert h.evals[blocked.id].status == EvalStatus.COMPLETE
    assert h.evals[blocked.id].queued_allocations == {"web": 0}


def test_constraints_filter_nodes() -> None:
    h = Harness()
    linux = h.add_node().id
    h.add_node(attributes={"kernel.name": "windows"})
    job = mock_job(count=3, constraints=(Constraint(l_target="${attr.kernel.name}", r_target="linux"),))
    h.run(job)
    assert {a.node_id for a in h.live_allocs("web")} == {linux}


def test_datacenter_mismatch_fails_placement() -> None:
    h, _ = cluster(2, datacenter="dc2")
    ev = h.run(mock_job(count=1))
    assert h.live_allocs("web") == []
    assert ev.queued_allocations == {"web": 1}
    assert ev.failed_tg_allocs["web"].nodes_available == {}


def test_distinct_hosts() -> None:
    h, _nodes = cluster(3)
    job = mock_job(count=5, cpu=100, constraints=(Constraint(operand="distinct_hosts"),))
    ev = h.run(job)
    live = h.live_allocs("web")
    assert len(live) == 3
    assert len({a.node_id for a in live}) == 3
    assert ev.queued_allocations == {"web": 2}


def test_partial_commit_refreshes_and_retries() -> None:
    h, nodes = cluster(2)
    h.reject_once = {nodes[0]}
    ev = h.run(mock_job(count=4))
    assert h.refreshes == 1
    assert len(h.plans) == 2
    first, _second = h.results
    assert nodes[0] not in first.node_allocation
    assert first.refresh_index > 0
    assert len(h.live_allocs("web")) == 4
    assert h.evals[ev.id].status == EvalStatus.COMPLETE


def test_plan_always_rejected_fails_eval_after_max_attempts() -> None:
    h, nodes = cluster(1)
    h.reject_nodes = set(nodes)
    ev = h.run(mock_job(count=1))
    assert ev.status == EvalStatus.FAILED
    assert "maximum attempts reached (5)" in ev.status_description
    assert h.refreshes == 5


def test_batch_complete_is_not_replaced() -> None:
    h, _ = cluster(1)
    h.run(mock_job("b", count=2, job_type="batch"))
    allocs = h.live_allocs("b")
    for a in allocs:
        h.set_client_status(a.id, AllocClientStatus.COMPLETE)
    h.process(h.make_eval(h.job("b"), EvalTrigger.ALLOC_FAILURE))
    assert h.live_allocs("b") == []
    assert len(h.all_allocs("b")) == 2


def test_service_complete_is_replaced() -> None:
    h, _ = cluster(1)
    h.run(mock_job(count=1))
    a = h.live_allocs("web")[0]
    h.set_client_status(a.id, AllocClientStatus.COMPLETE)
    h.process(h.make_eval(h.job("web")))
    live = h.live_allocs("web")
    assert len(live) == 1
    assert live[0].id != a.id
    assert live[0].name == a.name


def test_batch_failed_reschedules_once() -> None:
    h, _nodes = cluster(2)
    h.run(mock_job("b", count=1, job_type="batch"))
    first = h.live_allocs("b")[0]
    h.set_client_status(first.id, AllocClientStatus.FAILED)
    h.now += 10 * 10**9  # past the batch policy's 5 s delay
    h.process(h.make_eval(h.job("b"), EvalTrigger.ALLOC_FAILURE))
    second = h.live_allocs("b")[0]
    assert second.previous_allocation == first.id
    assert second.node_id != first.node_id  # the failed node is penalised
    assert second.reschedule_tracker is not None
    assert len(second.reschedule_tracker.events) == 1
    assert h.alloc(first.id).next_allocation == second.id
    h.set_client_status(second.id, AllocClientStatus.FAILED)
    h.now += 10 * 10**9
    h.process(h.make_eval(h.job("b"), EvalTrigger.ALLOC_FAILURE))
    assert h.live_allocs("b") == []  # attempts (1 per 24 h) used up


def test_service_failed_waits_with_follow_up_eval() -> None:
    h, _ = cluster(2)
    h.run(mock_job(count=1))
    a = h.live_allocs("web")[0]
    h.set_client_status(a.id, AllocClientStatus.FAILED)
    ev = h.make_eval(h.job("web"), EvalTrigger.ALLOC_FAILURE)
    h.process(ev)
    assert h.live_allocs("web") == []  # 30 s reschedule delay not over
    follow = [e for e in h.created_evals if e.triggered_by == EvalTrigger.ALLOC_FAILURE]
    assert len(follow) == 1
    assert follow[0].wait_until.endswith("Z")
    assert h.alloc(a.id).follow_up_eval_id == follow[0].id
    # the same eval again does not create a second follow-up
    h.process(h.make_eval(h.job("web"), EvalTrigger.ALLOC_FAILURE))
    assert len([e for e in h.created_evals if e.triggered_by == EvalTrigger.ALLOC_FAILURE]) == 1
    h.now += 31 * 10**9
    h.process(follow[0])
    live = h.live_allocs("web")
    assert len(live) == 1
    assert live[0].previous_allocation == a.id


def two_group_job(constraint: Constraint, *, on_job: bool) -> Job:
    job = mock_job(count=2, cpu=100)
    tg = job.task_groups[0]
    a = dataclasses.replace(tg, name="a", constraints=() if on_job else (constraint,))
    b = dataclasses.replace(tg, name="b", constraints=() if on_job else (constraint,))
    return dataclasses.replace(
        job, task_groups=(a, b), constraints=(constraint,) if on_job else ()
    ).canonicalize()


def test_distinct_hosts_scope_group_vs_job() -> None:
    h, _ = cluster(2)
    ev = h.run(two_group_job(Constraint(operand="distinct_hosts"), on_job=False))
    assert len(h.live_allocs("web")) == 4
    for group in ("a", "b"):
        nodes = [a.node_id for a in h.live_allocs("web") if a.task_group == group]
        assert len(set(nodes)) == 2
    assert ev.queued_allocations == {"a": 0, "b": 0}
    h2, _ = cluster(2)
    ev2 = h2.run(two_group_job(Constraint(operand="distinct_hosts"), on_job=True))
    assert len(h2.live_allocs("web")) == 2
    assert sum(ev2.queued_allocations.values()) == 2


def test_distinct_property() -> None:
    h = Harness()
    r1 = {h.add_node(meta={"rack": "r1"}).id for _ in range(2)}
    r2 = h.add_node(meta={"rack": "r2"}).id
    h.add_node()  # no rack: never feasible for distinct_property on rack
    prop = Constraint(l_target="${meta.rack}", operand="distinct_property")
    ev = h.run(mock_job(count=3, cpu=100, constraints=(prop,)))
    live = h.live_allocs("web")
    assert len(live) == 2
    assert {a.node_id for a in live} & r1
    assert r2 in {a.node_id for a in live}
    assert ev.queued_allocations == {"web": 1}
    assert "distinct_property ${meta.rack}" in ev.failed_tg_allocs["web"].constraint_filtered
    # RTarget raises the per-value limit; the existing allocations count
    two = dataclasses.replace(prop, r_target="2")
    job = h.upsert_job(dataclasses.replace(h.job("web"), constraints=(two,)))
    h.process(h.make_eval(job))
    live = h.live_allocs("web")
    assert len(live) == 3
    racks = Counter("r2" if a.node_id == r2 else "r1" for a in live)
    assert racks["r1"] <= 2
    assert racks["r2"] <= 2


def test_failed_alloc_without_room_stays_reschedulable() -> None:
    h, (n1,) = cluster(1)
    h.run(mock_job("b", count=1, job_type="batch", cpu=3000))
    first = h.live_allocs("b")[0]
    h.set_client_status(first.id, AllocClientStatus.FAILED)
    # something else takes the room before the failed allocation is rescheduled
    h.run(mock_job("other", count=1, cpu=3000))
    h.now += 10 * 10**9
    ev = h.make_eval(h.job("b"), EvalTrigger.ALLOC_FAILURE)
    h.process(ev)
    assert h.evals[ev.id].queued_allocations == {"web": 1}
    assert h.alloc(first.id).desired_status == AllocDesiredStatus.RUN  # not marked rescheduled
    h.add_node()
    h.process(h.evals[h.evals[ev.id].blocked_eval])
    (second,) = h.live_allocs("b")
    assert second.previous_allocation == first.id
    assert second.node_id != n1


def _resize(h: Harness, memory_mb: int) -> Job:
    job = h.job("web")
    tg = job.task_groups[0]
    task = dataclasses.replace(
        tg.tasks[0], resources=dataclasses.replace(tg.tasks[0].resources, memory_mb=memory_mb)
    )
    return h.upsert_job(dataclasses.replace(job, task_groups=(dataclasses.replace(tg, tasks=(task,)),)))


def test_destructive_updates_reuse_the_room_they_free() -> None:
    h, (n1,) = cluster(1)  # 8192 MB
    h.run(mock_job(count=2, memory_mb=3000))
    old = {a.id for a in h.live_allocs("web")}
    ev = h.make_eval(_resize(h, 4000))
    h.process(ev)
    live = h.live_allocs("web")
    assert len(live) == 2
    assert not old & {a.id for a in live}
    assert {a.node_id for a in live} == {n1}
    assert h.refreshes == 0  # the plan fitted: no rejected node
    assert h.evals[ev.id].queued_allocations == {"web": 0}


def test_destructive_updates_that_do_not_fit_change_nothing() -> None:
    h, _ = cluster(1)
    h.run(mock_job(count=2, memory_mb=4000))
    old = {a.id for a in h.live_allocs("web")}
    plans = len(h.plans)
    ev = h.make_eval(_resize(h, 5000))
    h.process(ev)
    assert {a.id for a in h.live_allocs("web")} == old
    assert len(h.plans) == plans  # nothing to submit
    assert h.refreshes == 0
    done = h.evals[ev.id]
    assert done.queued_allocations == {"web": 2}
    assert done.blocked_eval
