from __future__ import annotations

import json

import pytest

from nomadd.structs.alloc import (
    Allocation,
    AllocClientStatus,
    AllocDesiredStatus,
    AllocMetric,
    TaskEvent,
    TaskState,
    TaskStatus,
    alloc_name,
)
from nomadd.structs.codec import from_api, pack, to_api, unpack
from nomadd.structs.eval import EvalStatus, EvalTrigger, Evaluation
from nomadd.structs.plan import Plan, PlanResult
from nomadd.structs.resources import (
    AllocatedCpuResources,
    AllocatedMemoryResources,
    AllocatedResources,
    AllocatedSharedResources,
    AllocatedTaskResources,
    Resources,
)
from nomadd.structs.timeutil import ZERO_TIME, format_time, parse_time


def make_alloc(**kw: object) -> Allocation:
    base: dict[str, object] = {
        "id": "a1",
        "eval_id": "e1",
        "name": alloc_name("web", "g", 2),
        "node_id": "n1",
        "job_id": "web",
        "task_group": "g",
        "allocated_resources": AllocatedResources(
            tasks={
                "t": AllocatedTaskResources(
                    cpu=AllocatedCpuResources(cpu_shares=100),
                    memory=AllocatedMemoryResources(memory_mb=256),
                ),
                "u": AllocatedTaskResources.from_ask(Resources(cpu=50, memory_mb=64)),
            },
            shared=AllocatedSharedResources(disk_mb=300),
        ),
    }
    base.update(kw)
    return Allocation(**base)  # type: ignore[arg-type]


def test_name_and_index() -> None:
    a = make_alloc()
    assert a.name == "web.g[2]"
    assert a.index() == 2
    assert make_alloc(name="weird").index() == -1
    assert make_alloc(name="x.g[abc]").index() == -1


def test_comparable_resources() -> None:
    assert make_alloc().comparable_resources() == (150, 320, 300)


@pytest.mark.parametrize(
    ("desired", "client", "terminal"),
    [
        (AllocDesiredStatus.RUN, AllocClientStatus.PENDING, False),
        (AllocDesiredStatus.RUN, AllocClientStatus.RUNNING, False),
        (AllocDesiredStatus.RUN, AllocClientStatus.UNKNOWN, False),
        (AllocDesiredStatus.RUN, AllocClientStatus.COMPLETE, True),
        (AllocDesiredStatus.RUN, AllocClientStatus.FAILED, True),
        (AllocDesiredStatus.RUN, AllocClientStatus.LOST, True),
        (AllocDesiredStatus.STOP, AllocClientStatus.RUNNING, True),
        (AllocDesiredStatus.EVICT, AllocClientStatus.RUNNING, True),
    ],
)
def test_terminal(desired: AllocDesiredStatus, client: AllocClientStatus, terminal: bool) -> None:
    a = make_alloc(desired_status=desired, client_status=client)
    assert a.terminal() is terminal
    assert a.server_terminal() is (desired != AllocDesiredStatus.RUN)


def test_ran_successfully() -> None:
    assert make_alloc(client_status=AllocClientStatus.COMPLETE).ran_successfully()
    ok = {"t": TaskState(state=TaskStatus.DEAD)}
    assert make_alloc(task_states=ok).ran_successfully()
    bad = {"t": TaskState(state=TaskStatus.DEAD, failed=True)}
    assert not make_alloc(task_states=bad).ran_successfully()
    assert not make_alloc().ran_successfully()


def test_stub_and_api_shape() -> None:
    a = make_alloc(
        task_states={
            "t": TaskState(
                state=TaskStatus.RUNNING,
                events=(TaskEvent(type="Started", time=5, exit_code=0),),
            )
        },
        follow_up_eval_id="e2",
    )
    stub = json.loads(json.dumps(to_api(a.stub())))
    assert stub["ID"] == "a1"
    assert stub["EvalID"] == "e1"
    assert stub["NodeID"] == "n1"
    assert stub["JobID"] == "web"
    assert stub["FollowupEvalID"] == "e2"
    assert stub["ClientStatus"] == "pending"
    assert stub["DesiredStatus"] == "run"
    assert stub["TaskStates"]["t"]["State"] == "running"
    assert stub["TaskStates"]["t"]["Events"][0]["Type"] == "Started"
    full = to_api(a)
    assert full["AllocatedResources"]["Tasks"]["t"]["Memory"]["MemoryMB"] == 256  # type: ignore[index]
    assert full["AllocatedResources"]["Shared"]["DiskMB"] == 300  # type: ignore[index]
    assert from_api(Allocation, json.loads(json.dumps(full))) == a
    assert unpack(Allocation, pack(a)) == a


def test_eval_shape_and_predicates() -> None:
    ev = Evaluation(
        id="e1",
        type="service",
        triggered_by=EvalTrigger.NODE_UPDATE,
        job_id="web",
        node_id="n1",
        status=EvalStatus.BLOCKED,
        failed_tg_allocs={"g": AllocMetric(nodes_evaluated=3, nodes_exhausted=3)},
        queued_allocations={"g": 2},
    )
    doc = json.loads(json.dumps(to_api(ev)))
    assert doc["TriggeredBy"] == "node-update"
    assert doc["FailedTGAllocs"]["g"]["NodesExhausted"] == 3
    assert doc["QueuedAllocations"] == {"g": 2}
    assert doc["LeaderACK"] == ""
    assert from_api(Evaluation, doc) == ev
    assert ev.should_block()
    assert not ev.terminal()
    assert Evaluation(status=EvalStatus.CANCELED).terminal()
    assert Evaluation().should_enqueue()


def test_plan_result_full_commit() -> None:
    a, b = make_alloc(id="a"), make_alloc(id="b")
    plan = Plan(eval_id="e", node_allocation={"n1": (a, b)}, node_update={"n2": (a,)})
    assert plan.placements() == 2
    assert not plan.is_no_op()
    assert Plan().is_no_op()
    assert PlanResult(node_allocation={"n1": (a, b)}, node_update={"n2": (a,)}).full_commit(plan) == (
        True,
        3,
        3,
    )
    assert PlanResult(node_update={"n2": (a,)}).full_commit(plan) == (False, 3, 1)
    assert unpack(Plan, pack(plan)) == plan


def test_time_format_round_trip() -> None:
    ns = 1_700_000_000_123_456_789
    text = format_time(ns)
    assert text == "2023-11-14T22:13:20.123456789Z"
    assert parse_time(text) == ns
    assert format_time(1_700_000_000_000_000_000) == "2023-11-14T22:13:20Z"
    assert parse_time(format_time(1_700_000_000_500_000_000)) == 1_700_000_000_500_000_000
    assert format_time(0) == ZERO_TIME
    assert parse_time(ZERO_TIME) == 0
    assert parse_time("2023-11-14T23:13:20+01:00") == 1_700_000_000_000_000_000
