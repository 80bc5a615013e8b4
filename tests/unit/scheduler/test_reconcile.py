from __future__ import annotations

import dataclasses

from nomadd.scheduler.reconcile import (
    Placement,
    Reconciled,
    next_reschedule_time,
    reconcile,
    reschedule_tracker,
    tasks_updated,
)
from nomadd.scheduler.testing import mock_job, mock_node
from nomadd.structs.alloc import (
    Allocation,
    AllocClientStatus,
    AllocDesiredStatus,
    DesiredTransition,
    RescheduleEvent,
    RescheduleTracker,
)
from nomadd.structs.job import Job, JobType
from nomadd.structs.node import Node, NodeStatus
from nomadd.structs.policy import ReschedulePolicy
from nomadd.structs.timeutil import NS_PER_HOUR, NS_PER_S

NOW = 1_700_000_000 * NS_PER_S
NODES = {"n1": mock_node("n1"), "n2": mock_node("n2")}


def placements(out: Reconciled) -> list[Placement]:
    """Replacements, then every new placement drawn from the lazy groups."""
    return [*out.place, *(p for new in out.new for p in new)]


def test_a_huge_count_is_one_lazy_entry() -> None:
    job = mock_job("web", count=10**9)
    out = reconcile(job, [alloc(job, 1)], node_of, NOW, batch=False)
    assert out.place == []
    assert [(n.group, n.count) for n in out.new] == [("web", 10**9 - 1)]
    first = [p.name for _, p in zip(range(3), out.new[0], strict=False)]
    assert first == ["web.web[0]", "web.web[2]", "web.web[3]"]


def node_of(node_id: str) -> Node | None:
    return NODES.get(node_id)


def alloc(job: Job, index: int, node: str = "n1", **kw: object) -> Allocation:
    a = Allocation(
        id=f"a{index}",
        name=f"{job.id}.web[{index}]",
        node_id=node,
        job_id=job.id,
        job=job,
        job_version=job.version,
        task_group="web",
        create_index=index,
    )
    return dataclasses.replace(a, **kw)  # type: ignore[arg-type]


def test_new_job_places_lowest_names() -> None:
    job = mock_job(count=3)
    out = reconcile(job, [], node_of, NOW, batch=False)
    assert [p.name for p in placements(out)] == ["web.web[0]", "web.web[1]", "web.web[2]"]
    assert out.stop == []
    assert out.desired == {"web": 3}


def test_fills_gaps_in_names() -> None:
    job = mock_job(count=3)
    out = reconcile(job, [alloc(job, 1)], node_of, NOW, batch=False)
    assert [p.name for p in placements(out)] == ["web.web[0]", "web.web[2]"]


def test_scale_down_stops_highest_index() -> None:
    job = mock_job(count=1)
    existing = [alloc(job, 0), alloc(job, 1), alloc(job, 2)]
    out = reconcile(job, existing, node_of, NOW, batch=False)
    assert sorted(s.alloc.name for s in out.stop) == ["web.web[1]", "web.web[2]"]
    assert placements(out) == []


def test_lost_over_count_is_stopped_without_replacement() -> None:
    job = mock_job(count=1)
    gone = dataclasses.replace(NODES["n2"], status=NodeStatus.DOWN)
    nodes = {"n1": NODES["n1"], "n2": gone}
    existing = [alloc(job, 0), alloc(job, 1, node="n2")]
    out = reconcile(job, existing, nodes.get, NOW, batch=False)
    assert [(s.alloc.id, s.client_status) for s in out.stop] == [("a1", AllocClientStatus.LOST)]
    assert placements(out) == []


def test_missing_node_counts_as_lost() -> None:
    job = mock_job(count=1)
    out = reconcile(job, [alloc(job, 0, node="gone")], node_of, NOW, batch=False)
    assert out.stop[0].client_status == AllocClientStatus.LOST
    assert placements(out)[0].previous is not None
    assert placements(out)[0].name == "web.web[0]"


def test_migrate_flag_moves_alloc() -> None:
    job = mock_job(count=1)
    a = alloc(job, 0, desired_transition=DesiredTransition(migrate=True))
    out = reconcile(job, [a], node_of, NOW, batch=False)
    assert out.stop[0].alloc.id == "a0"
    assert out.stop[0].client_status is None
    assert placements(out)[0].previous == a


def test_server_terminal_allocs_are_ignored() -> None:
    job = mock_job(count=1)
    old = alloc(job, 0, desired_status=AllocDesiredStatus.STOP)
    out = reconcile(job, [old], node_of, NOW, batch=False)
    assert [p.name for p in placements(out)] == ["web.web[0]"]
    assert placements(out)[0].previous is None


def test_group_removed_stops_its_allocs() -> None:
    job = mock_job(count=1)
    orphan = dataclasses.replace(alloc(job, 0), task_group="old-group")
    out = reconcile(job, [orphan], node_of, NOW, batch=False)
    assert [s.alloc.id for s in out.stop] == ["a0"]


def test_in_place_vs_destructive() -> None:
    v0 = mock_job(count=1)
    v1 = dataclasses.replace(v0, version=1, job_modify_index=9)
    a = alloc(v0, 0)
    out = reconcile(v1, [a], node_of, NOW, batch=False)
    assert out.inplace == [a]
    assert placements(out) == []
    tg = v0.task_groups[0]
    changed = dataclasses.replace(
        v1,
        task_groups=(dataclasses.replace(tg, tasks=(dataclasses.replace(tg.tasks[0], user="nobody"),)),),
    )
    assert tasks_updated(v0, tg, changed, changed.task_groups[0])
    out = reconcile(changed, [a], node_of, NOW, batch=False)
    assert out.inplace == []
    assert [s.alloc.id for s in out.stop] == ["a0"]
    assert [p.previous for p in placements(out)] == [a]


def test_count_change_alone_is_not_a_task_update() -> None:
    v0 = mock_job(count=1)
    tg = v0.task_groups[0]
    assert not tasks_updated(v0, tg, v0, dataclasses.replace(tg, count=9))


def test_reschedule_policy_windows() -> None:
    failed = Allocation(id="f", client_status=AllocClientStatus.FAILED, modify_time=NOW - 10 * NS_PER_S)
    service = ReschedulePolicy()
    when, delay = next_reschedule_time(failed, service, NOW) or (0, 0)
    assert delay == 30 * NS_PER_S
    assert when == NOW + 20 * NS_PER_S
    # exponential: doubles the previous delay, capped at MaxDelay
    tracker = RescheduleTracker(events=(RescheduleEvent(reschedule_time=NOW, delay=40 * 60 * NS_PER_S),))
    again = dataclasses.replace(failed, reschedule_tracker=tracker)
    assert next_reschedule_time(again, service, NOW) == (failed.modify_time + NS_PER_HOUR, NS_PER_HOUR)
    batch = ReschedulePolicy(attempts=1, interval=24 * NS_PER_HOUR, delay=5 * NS_PER_S, unlimited=False)
    assert next_reschedule_time(again, batch, NOW) is None  # one attempt in 24 h, used
    assert next_reschedule_time(failed, None, NOW) is None
    forced = dataclasses.replace(failed, desired_transition=DesiredTransition(force_reschedule=True))
    assert next_reschedule_time(forced, None, NOW) == (NOW, 0)


def test_reschedule_tracker_appends() -> None:
    prev = Allocation(
        id="p",
        node_id="n1",
        reschedule_tracker=RescheduleTracker(events=(RescheduleEvent(prev_alloc_id="x"),)),
    )
    tracker = reschedule_tracker(prev, NOW, 5)
    assert [e.prev_alloc_id for e in tracker.events] == ["x", "p"]
    assert tracker.events[-1].prev_node_id == "n1"
    assert tracker.events[-1].delay == 5


def test_batch_successful_counts_toward_count() -> None:
    job = mock_job(count=2, job_type=JobType.BATCH)
    done = alloc(job, 0, client_status=AllocClientStatus.COMPLETE)
    out = reconcile(job, [done], node_of, NOW, batch=True)
    assert [p.name for p in placements(out)] == ["web.web[1]"]


def test_scale_down_drops_waiting_failed_before_running() -> None:
    job = mock_job(count=2)
    failed = alloc(job, 0, client_status=AllocClientStatus.FAILED, modify_time=NOW)  # 30 s delay
    running = [alloc(job, 1), alloc(job, 2)]
    out = reconcile(job, [failed, *running], node_of, NOW, batch=False)
    assert [s.alloc.id for s in out.stop] == ["a0"]
    assert out.followups == []
    assert placements(out) == []
    # with room for it, the failed one waits for its delay through a follow-up eval
    bigger = mock_job(count=3)
    out = reconcile(bigger, [failed, *running], node_of, NOW, batch=False)
    assert out.stop == []
    assert [(a.id, when) for a, when in out.followups] == [("a0", NOW + 30 * NS_PER_S)]
