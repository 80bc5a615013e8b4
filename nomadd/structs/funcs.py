"""Checks shared by the scheduler and the plan applier (Nomad's structs/funcs.go)."""

from __future__ import annotations

from collections.abc import Iterable

from nomadd.structs.alloc import Allocation
from nomadd.structs.node import Node, NodeEligibility, NodeStatus

__all__ = ["allocs_fit", "evaluate_node_plan", "fits", "refuses_new_placements"]

_DIMENSIONS = ("cpu", "memory", "disk")


def allocs_fit(node: Node, allocs: Iterable[Allocation]) -> tuple[bool, str]:
    """Whether the non-terminal ``allocs`` fit the node's schedulable resources.

    Returns ``(True, "")`` or ``(False, dimension)`` with the first exhausted dimension
    (``cpu``, ``memory`` or ``disk``).
    """
    cpu = mem = disk = 0
    for alloc in allocs:
        if alloc.terminal():
            continue
        c, m, d = alloc.allocated_resources.comparable()
        cpu += c
        mem += m
        disk += d
    return fits(node, (cpu, mem, disk))


def refuses_new_placements(node: Node | None) -> str:
    """Why ``node`` takes no new allocations ("" when it does): gone, not ready, ineligible."""
    if node is None:
        return "node does not exist"
    if node.status != NodeStatus.READY:
        return "node is not ready for placements"
    if node.scheduling_eligibility == NodeEligibility.INELIGIBLE:
        return "node is not eligible for placements"
    return ""


def fits(node: Node, used: tuple[int, int, int] | list[int]) -> tuple[bool, str]:
    """Whether summed (cpu, memory, disk) ``used`` fits the node: ``(True, "")`` or
    ``(False, dimension)`` with the first exhausted one."""
    capacity = node.comparable_resources()
    for i, dimension in enumerate(_DIMENSIONS):
        if used[i] > capacity[i]:
            return False, dimension
    return True, ""


def evaluate_node_plan(
    node: Node | None,
    existing: Iterable[Allocation],
    stops: Iterable[Allocation],
    placements: Iterable[Allocation],
) -> tuple[bool, str]:
    """Whether a plan's part for one node may be committed (Nomad's evaluateNodePlan).

    ``existing`` are the node's allocations in current state, ``stops`` the plan's
    ``node_update`` for the node, ``placements`` its ``node_allocation`` (new allocations and
    in-place updates of existing ones). New allocations need a ready, eligible node; updates
    and stops are always accepted when they fit. Returns ``(ok, reason)``.
    """
    placements = list(placements)
    existing_ids = set()
    current: dict[str, Allocation] = {}
    for alloc in existing:
        current[alloc.id] = alloc
        existing_ids.add(alloc.id)
    new = [a for a in placements if a.id not in existing_ids]
    if new and (why := refuses_new_placements(node)):
        return False, why
    if node is None:
        return True, ""
    for alloc in stops:
        current.pop(alloc.id, None)
    for alloc in placements:
        current[alloc.id] = alloc
    ok, dimension = allocs_fit(node, current.values())
    return (True, "") if ok else (False, f"resources exhausted: {dimension}")
