from __future__ import annotations

import dataclasses

from nomadd.structs.alloc import Allocation, AllocClientStatus, AllocDesiredStatus
from nomadd.structs.funcs import allocs_fit, evaluate_node_plan
from nomadd.structs.node import (
    Node,
    NodeCpuResources,
    NodeDiskResources,
    NodeEligibility,
    NodeMemoryResources,
    NodeResources,
    NodeStatus,
)
from nomadd.structs.resources import (
    AllocatedCpuResources,
    AllocatedMemoryResources,
    AllocatedResources,
    AllocatedSharedResources,
    AllocatedTaskResources,
)

NODE = Node(
    id="n1",
    status=NodeStatus.READY,
    node_resources=NodeResources(
        cpu=NodeCpuResources(cpu_shares=1000),
        memory=NodeMemoryResources(memory_mb=1000),
        disk=NodeDiskResources(disk_mb=1000),
    ),
)


def alloc(alloc_id: str, cpu: int = 400, mem: int = 100, disk: int = 100, **kw: object) -> Allocation:
    a = Allocation(
        id=alloc_id,
        node_id="n1",
        allocated_resources=AllocatedResources(
            tasks={
                "t": AllocatedTaskResources(
                    cpu=AllocatedCpuResources(cpu_shares=cpu),
                    memory=AllocatedMemoryResources(memory_mb=mem),
                )
            },
            shared=AllocatedSharedResources(disk_mb=disk),
        ),
    )
    return dataclasses.replace(a, **kw)  # type: ignore[arg-type]


def test_allocs_fit_by_dimension() -> None:
    assert allocs_fit(NODE, [alloc("a"), alloc("b")]) == (True, "")
    assert allocs_fit(NODE, [alloc("a"), alloc("b"), alloc("c")]) == (False, "cpu")
    assert allocs_fit(NODE, [alloc("a", cpu=1, mem=1001)]) == (False, "memory")
    assert allocs_fit(NODE, [alloc("a", cpu=1, mem=1, disk=1001)]) == (False, "disk")
    stopped = alloc("c", desired_status=AllocDesiredStatus.STOP)
    done = alloc("d", client_status=AllocClientStatus.COMPLETE)
    assert allocs_fit(NODE, [alloc("a"), alloc("b"), stopped, done]) == (True, "")


def test_evaluate_node_plan_accounts_for_stops_and_updates() -> None:
    existing = [alloc("a"), alloc("b")]
    assert evaluate_node_plan(NODE, existing, [], [alloc("c")]) == (
        False,
        "resources exhausted: cpu",
    )
    assert evaluate_node_plan(NODE, existing, [existing[0]], [alloc("c")]) == (True, "")
    # an in-place update of an existing alloc replaces it, it is not counted twice
    assert evaluate_node_plan(NODE, existing, [], [alloc("a", cpu=500)]) == (True, "")


def test_new_allocs_need_a_ready_eligible_node() -> None:
    down = dataclasses.replace(NODE, status=NodeStatus.DOWN)
    assert evaluate_node_plan(down, [], [], [alloc("c")]) == (
        False,
        "node is not ready for placements",
    )
    inel = dataclasses.replace(NODE, scheduling_eligibility=NodeEligibility.INELIGIBLE)
    assert evaluate_node_plan(inel, [], [], [alloc("c")])[0] is False
    assert evaluate_node_plan(None, [], [], [alloc("c")]) == (False, "node does not exist")
    # stops (e.g. marking allocs lost) on a down or vanished node are always fine
    existing = [alloc("a")]
    assert evaluate_node_plan(down, existing, existing, []) == (True, "")
    assert evaluate_node_plan(None, existing, existing, []) == (True, "")
    # updating an existing alloc on an ineligible node is fine
    assert evaluate_node_plan(inel, existing, [], [alloc("a")]) == (True, "")
