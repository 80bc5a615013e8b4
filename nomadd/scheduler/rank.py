"""Resource fit and bin-packing ranking, aware of what the current plan already placed/stopped.

Scoring follows Nomad's BestFit (``ScoreFitBinPack``): ``20 - (10^freeCpu + 10^freeMem)``,
normalised by 18, so fuller nodes score higher; a job-anti-affinity penalty spreads a task
group's allocations, and a node an allocation is being rescheduled away from scores -1. Like
Nomad's stack, at most ``limit`` fitting nodes are scored per placement (ceil(log2 n) for
service jobs, 2 for batch), walking the eval's shuffled node list from where the last
placement stopped, so per-placement work is bounded on large clusters.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

from nomadd.scheduler.context import PlanBuilder
from nomadd.scheduler.feasible import GroupChecker
from nomadd.scheduler.protocols import State
from nomadd.structs.alloc import AllocMetric
from nomadd.structs.node import Node

__all__ = [
    "BATCH_SCORE_LIMIT",
    "BINPACK_MAX_SCORE",
    "MAX_SCORES_IN_METRIC",
    "NodeUsage",
    "Selection",
    "Stack",
    "binpack_score",
    "score_limit",
]

BINPACK_MAX_SCORE = 18.0  # Nomad's binPackingMaxFitScore
BATCH_SCORE_LIMIT = 2  # Nomad scores two fitting nodes per batch placement ("power of two choices")
MAX_SCORES_IN_METRIC = 5  # top scores kept in AllocMetric.scores

_DIMENSIONS = ("cpu", "memory", "disk")


def score_limit(num_nodes: int, batch: bool) -> int:
    """How many fitting nodes to score per placement (Nomad's GenericStack.Select)."""
    limit = BATCH_SCORE_LIMIT
    if not batch and num_nodes > 0:
        limit = max(limit, math.ceil(math.log2(num_nodes)))
    return limit


def binpack_score(capacity: tuple[int, int, int], used: Sequence[int]) -> float:
    """Nomad's ScoreFitBinPack over cpu and memory, in [0, 1] (1 = node exactly full)."""
    cpu_cap, mem_cap = capacity[0], capacity[1]
    free_cpu = 1.0 - used[0] / cpu_cap if cpu_cap > 0 else 0.0
    free_mem = 1.0 - used[1] / mem_cap if mem_cap > 0 else 0.0
    total = math.pow(10.0, free_cpu) + math.pow(10.0, free_mem)
    score = 20.0 - total
    return max(0.0, min(score, BINPACK_MAX_SCORE)) / BINPACK_MAX_SCORE


class NodeUsage:
    """Resources in use per node and job/group collisions: state minus plan stops plus plan
    placements. Node rows are loaded lazily from ``state.allocs_by_node`` once per eval."""

    __slots__ = ("_counts", "_plan", "_state", "_used")

    def __init__(self, state: State, plan: PlanBuilder) -> None:
        self._state = state
        self._plan = plan
        self._used: dict[str, list[int]] = {}
        self._counts: dict[str, dict[tuple[str, str], int]] = {}

    def _load(self, node_id: str) -> list[int]:
        used = [0, 0, 0]
        counts: dict[tuple[str, str], int] = {}
        stopped = self._plan.stopped
        for alloc in self._state.allocs_by_node(node_id):
            if alloc.terminal() or alloc.id in stopped:
                continue
            cpu, mem, disk = alloc.allocated_resources.comparable()
            used[0] += cpu
            used[1] += mem
            used[2] += disk
            for key in ((alloc.job_id, ""), (alloc.job_id, alloc.task_group)):
                counts[key] = counts.get(key, 0) + 1
        self._used[node_id] = used
        self._counts[node_id] = counts
        return used

    def used(self, node_id: str) -> list[int]:
        used = self._used.get(node_id)
        return used if used is not None else self._load(node_id)

    def collisions(self, node_id: str, job_id: str, group: str = "") -> int:
        if node_id not in self._counts:
            self._load(node_id)
        return self._counts[node_id].get((job_id, group), 0)

    def add(self, node_id: str, job_id: str, group: str, ask: tuple[int, int, int]) -> None:
        used = self.used(node_id)
        for i in range(3):
            used[i] += ask[i]
        counts = self._counts[node_id]
        for key in ((job_id, ""), (job_id, group)):
            counts[key] = counts.get(key, 0) + 1

    def release(self, node_id: str, job_id: str, group: str, ask: tuple[int, int, int]) -> None:
        """Undo an allocation counted in ``used`` (one the plan stops after loading)."""
        if node_id not in self._used:
            return  # not loaded yet: the plan's stop set applies when it is
        used = self._used[node_id]
        for i in range(3):
            used[i] -= ask[i]
        counts = self._counts[node_id]
        for key in ((job_id, ""), (job_id, group)):
            counts[key] = counts.get(key, 0) - 1


class Selection:
    __slots__ = ("metric", "node")

    def __init__(self, node: Node | None, metric: AllocMetric) -> None:
        self.node = node
        self.metric = metric


class Stack:
    """Chooses nodes for one job's placements within one evaluation."""

    __slots__ = ("_batch", "_by_dc", "_nodes", "_offset", "job_id", "usage")

    def __init__(
        self,
        job_id: str,
        nodes: list[Node],
        nodes_by_dc: dict[str, int],
        usage: NodeUsage,
        *,
        batch: bool,
    ) -> None:
        self.job_id = job_id
        self._nodes = nodes  # already shuffled by the caller
        self._by_dc = nodes_by_dc
        self.usage = usage
        self._batch = batch
        self._offset = 0

    def select(
        self,
        group: str,
        checker: GroupChecker,
        ask: tuple[int, int, int],
        desired_count: int,
        penalty_nodes: frozenset[str] = frozenset(),
        only: Node | None = None,
    ) -> Selection:
        """The best of up to ``limit`` fitting nodes, or ``Selection(None, why)``.

        ``only`` restricts the choice to one node (system jobs).
        """
        start = time.perf_counter_ns()
        nodes = [only] if only is not None else self._nodes
        n = len(nodes)
        limit = n if only is not None else score_limit(n, self._batch)
        usage = self.usage
        evaluated = filtered = exhausted = 0
        dims: dict[str, int] = {}
        best: Node | None = None
        best_score = -math.inf
        scores: list[tuple[float, str]] = []
        found = 0
        offset = 0 if only is not None else self._offset
        visited = 0
        while visited < n and found < limit:
            node = nodes[(offset + visited) % n]
            visited += 1
            evaluated += 1
            if not checker.feasible(node):
                filtered += 1
                continue
            if checker.distinct_hosts and usage.collisions(node.id, self.job_id) > 0:
                filtered += 1
                checker.constraint_filtered["distinct_hosts"] = (
                    checker.constraint_filtered.get("distinct_hosts", 0) + 1
                )
                continue
            capacity = node.comparable_resources()
            used = usage.used(node.id)
            short = None
            for i in range(3):
                if used[i] + ask[i] > capacity[i]:
                    short = _DIMENSIONS[i]
                    break
            if short is not None:
                exhausted += 1
                dims[short] = dims.get(short, 0) + 1
                continue
            found += 1
            after = (used[0] + ask[0], used[1] + ask[1])
            score = binpack_score(capacity, after)
            parts = 1
            collisions = usage.collisions(node.id, self.job_id, group)
            if collisions > 0 and desired_count > 0:
                score += -(collisions + 1) / desired_count
                parts += 1
            if node.id in penalty_nodes:
                score += -1.0
                parts += 1
            score /= parts
            scores.append((score, node.id))
            if score > best_score:
                best, best_score = node, score
        if only is None and n:
            self._offset = (offset + visited) % n
        scores.sort(reverse=True)
        metric = AllocMetric(
            nodes_evaluated=evaluated,
            nodes_filtered=filtered,
            nodes_in_pool=n,
            nodes_available=dict(self._by_dc),
            constraint_filtered=dict(checker.constraint_filtered),
            class_filtered=dict(checker.class_filtered),
            nodes_exhausted=exhausted,
            dimension_exhausted=dims,
            scores={f"{nid}.normalized-score": s for s, nid in scores[:MAX_SCORES_IN_METRIC]},
            allocation_time=time.perf_counter_ns() - start,
        )
        if best is not None:
            usage.add(best.id, self.job_id, group, ask)
        return Selection(best, metric)
