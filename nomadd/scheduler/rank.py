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
import random
import time
import typing
from collections.abc import Iterable, Mapping, Sequence

from nomadd.scheduler.context import PlanBuilder
from nomadd.scheduler.feasible import (
    ALL_NODE_POOL,
    GroupChecker,
    datacenter_matches,
    resolve_target,
)
from nomadd.scheduler.ports import assign, used_ports
from nomadd.scheduler.protocols import NodeUsageIndex, State
from nomadd.structs.alloc import Allocation, AllocMetric
from nomadd.structs.codec_diff import replacer
from nomadd.structs.job import Job
from nomadd.structs.network import PortAsk
from nomadd.structs.node import Node
from nomadd.structs.resources import AllocatedPortMapping

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
SKIP_SCORE_THRESHOLD = 0.0  # Nomad's limit iterator passes over nodes scoring at most this...
MAX_SKIP = 3  # ... up to this many per placement, and takes them only if nothing else fits


class _NodeFacts:
    """What the scheduler derives from a node object alone (``ready()``, its comparable
    capacity), kept across evaluations: every evaluation visits its nodes afresh, and these
    were a tenth of the time of a placement.

    Nodes are immutable and every write stores a new object, so a row holds while the state
    still holds the same object (checked by identity); a node written since gets a new row.
    """

    __slots__ = ("_rows",)

    def __init__(self) -> None:
        self._rows: dict[str, tuple[Node, bool, tuple[int, int, int]]] = {}

    def of(self, node: Node) -> tuple[Node, bool, tuple[int, int, int]]:
        row = self._rows.get(node.id)
        if row is None or row[0] is not node:
            row = self._rows[node.id] = (node, node.ready(), node.comparable_resources())
        return row

    def trim(self, live: int) -> None:
        """Forget everything once rows of gone nodes could outnumber the live ones."""
        if len(self._rows) > 2 * live + 1024:
            self._rows.clear()


_FACTS = _NodeFacts()

# (node, eligible, its capacity's cpu, memory and disk, its ID, its computed class, its key in
# AllocMetric.scores): what the walk reads of a node, in one object
_EligibleRow = tuple[Node, bool, int, int, int, str, str, str]
_EligibleKey = tuple[str, tuple[str, ...]]  # (node pool, datacenters)
_MAX_ELIGIBILITY_TABLES = 64


class _Eligibility:
    """Per (node pool, datacenters): each node's eligibility (ready, in the pool, in one of
    the datacenters) and its capacity, kept across evaluations like :class:`_NodeFacts`, so
    visiting a node costs one lookup. Jobs of the same pool and datacenters share a table.

    A server's state hands the same tuple of nodes to every evaluation until a node is
    written: for it the rows are also kept in a list in the tuple's order (:meth:`aligned`),
    so the walk reads a node's row by its position, without a lookup by ID."""

    __slots__ = ("_aligned", "_tables")

    def __init__(self) -> None:
        self._tables: dict[_EligibleKey, dict[str, _EligibleRow]] = {}
        self._aligned: dict[_EligibleKey, tuple[Sequence[Node], list[_EligibleRow | None]]] = {}

    def aligned(self, key: _EligibleKey, nodes: Sequence[Node]) -> list[_EligibleRow | None]:
        """Row slots in the order of ``nodes`` (None: not filled in yet), shared by every
        evaluation of the same tuple; any other sequence (a list can change) gets its own."""
        if not isinstance(nodes, tuple):
            return [None] * len(nodes)
        kept = self._aligned.get(key)
        if kept is not None and kept[0] is nodes:
            return kept[1]
        if len(self._aligned) >= _MAX_ELIGIBILITY_TABLES:
            self._aligned.clear()
        rows: list[_EligibleRow | None] = [None] * len(nodes)
        self._aligned[key] = (nodes, rows)  # holds the tuple: its id is not reused meanwhile
        return rows

    def table(self, key: _EligibleKey, live: int) -> dict[str, _EligibleRow]:
        rows = self._tables.get(key)
        if rows is None:
            if len(self._tables) >= _MAX_ELIGIBILITY_TABLES:
                self._tables.clear()
            rows = self._tables[key] = {}
        elif len(rows) > 2 * live + 1024:
            rows.clear()  # rows of gone nodes could outnumber the live ones
        return rows


_ELIGIBILITY = _Eligibility()
_ZERO_USE = (0, 0, 0)
# One metric per placement: a copy of the empty one with these fields set (a positional call)
_NO_METRIC = AllocMetric()
_metric = replacer(
    AllocMetric,
    "nodes_evaluated",
    "nodes_filtered",
    "nodes_in_pool",
    "nodes_available",
    "class_filtered",
    "constraint_filtered",
    "nodes_exhausted",
    "class_exhausted",
    "dimension_exhausted",
    "scores",
    "allocation_time",
)


def score_limit(num_nodes: int, batch: bool) -> int:
    """How many fitting nodes to score per placement (Nomad's GenericStack.Select)."""
    limit = BATCH_SCORE_LIMIT
    if not batch and num_nodes > 0:
        limit = max(limit, math.ceil(math.log2(num_nodes)))
    return limit


def binpack_score(cpu_cap: int, mem_cap: int, cpu: int, mem: int) -> float:
    """Nomad's ScoreFitBinPack over cpu and memory (capacity, and use with the placement), in
    [0, 1] (1 = node exactly full)."""
    free_cpu = 1.0 - cpu / cpu_cap if cpu_cap > 0 else 0.0
    free_mem = 1.0 - mem / mem_cap if mem_cap > 0 else 0.0
    score = 20.0 - (10.0**free_cpu + 10.0**free_mem)
    if score > BINPACK_MAX_SCORE:  # clamped without min()/max(); Stack.select has it inline
        return 1.0
    return score / BINPACK_MAX_SCORE if score > 0.0 else 0.0


class NodeUsage:
    """Resources in use per node (state minus plan stops plus plan placements) and the job's
    collisions per node/group.

    Node rows are loaded lazily once per eval: from the state's :class:`NodeUsageIndex` when it
    has one (O(1)), else by summing ``allocs_by_node``. Collisions come from the job's own
    allocations (``job_allocs``), so only the evaluated job is counted.
    """

    __slots__ = ("_base", "_caps", "_counts", "_fast", "_plan", "_props", "_state", "_used")

    def __init__(self, state: State, plan: PlanBuilder, job_allocs: Iterable[Allocation]) -> None:
        self._state = state
        self._plan = plan
        # getattr, not isinstance: a runtime Protocol check costs more than a placement's scoring
        self._fast = typing.cast(NodeUsageIndex, state) if hasattr(state, "node_usage") else None
        rows = getattr(state, "node_usage_rows", None)
        # node -> usage in the state (the State's optional node_usage_rows()): nodes this eval
        # has not changed are read straight from it, without a row of their own in _used
        self._base: Mapping[str, Sequence[int]] | None = rows() if callable(rows) else None
        self._used: dict[str, list[int]] = {}
        self._caps: dict[str, tuple[int, int, int]] = {}
        self._props: dict[tuple[str, str], dict[str, int]] = {}
        # scope ("" = the whole job, else a group) -> node -> the job's allocations there
        self._counts: dict[str, dict[str, int]] = {"": {}}
        stopped = plan.stopped
        for alloc in job_allocs:
            if not (alloc.terminal() or alloc.id in stopped):
                self._count(alloc.node_id, alloc.task_group, 1)

    def _count(self, node_id: str, group: str, n: int) -> None:
        """``n`` more of the job's allocations (of ``group``) on the node."""
        for scope in ("", group):
            counts = self._counts.get(scope)
            if counts is None:
                counts = self._counts[scope] = {}
            counts[node_id] = counts.get(node_id, 0) + n

    def _load(self, node_id: str) -> list[int]:
        fast = self._fast
        if fast is not None:
            used = list(fast.node_usage(node_id))
            for _, (cpu, mem, disk) in self._plan.freed.get(node_id, ()):
                used[0] -= cpu
                used[1] -= mem
                used[2] -= disk
        else:
            used = [0, 0, 0]
            stopped = self._plan.stopped
            for alloc in self._state.allocs_by_node(node_id):
                if alloc.terminal() or alloc.id in stopped:
                    continue
                cpu, mem, disk = alloc.allocated_resources.comparable()
                used[0] += cpu
                used[1] += mem
                used[2] += disk
        self._used[node_id] = used
        return used

    def used(self, node_id: str) -> list[int]:
        used = self._used.get(node_id)
        return used if used is not None else self._load(node_id)

    def capacity(self, node: Node) -> tuple[int, int, int]:
        """The node's schedulable (cpu, memory, disk), computed once per eval."""
        cap = self._caps.get(node.id)
        if cap is None:
            cap = self._caps[node.id] = _FACTS.of(node)[2]
        return cap

    def collisions(self, node_id: str, group: str = "") -> int:
        """The evaluated job's allocations on the node (of ``group`` when given)."""
        return self._counts.get(group, {}).get(node_id, 0)

    def property_count(self, prop: str, scope: str, value: str) -> int:
        """The job's (scope "") or group's allocations on nodes whose ``prop`` is ``value``."""
        counts = self._props.get((prop, scope))
        if counts is None:
            counts = self._props[(prop, scope)] = {}
            for node_id, n in self._counts.get(scope, {}).items():
                if n <= 0:
                    continue
                node = self._state.node_by_id(node_id)
                v = resolve_target(prop, node) if node is not None else None
                if v is not None:
                    counts[v] = counts.get(v, 0) + n
        return counts.get(value, 0)

    def count_property(self, prop: str, scope: str, node: Node) -> None:
        """Record a placement on ``node`` in the (already loaded) property counts."""
        counts = self._props.get((prop, scope))
        value = resolve_target(prop, node)
        if counts is not None and value is not None:
            counts[value] = counts.get(value, 0) + 1

    def release(self, node_id: str, group: str, res: tuple[int, int, int]) -> None:
        """Stop counting an allocation the plan now stops (after this usage was built)."""
        if node_id in self._used:
            used = self._used[node_id]
            for i in range(3):
                used[i] -= res[i]
        self._count(node_id, group, -1)
        self._props.clear()  # rebuilt lazily from the counts

    def restore(self, node_id: str, group: str, res: tuple[int, int, int]) -> None:
        """Count again an allocation whose stop was taken out of the plan."""
        if node_id in self._used:
            used = self._used[node_id]
            for i in range(3):
                used[i] += res[i]
        self._count(node_id, group, 1)
        self._props.clear()  # rebuilt lazily from the counts

    def add(self, node_id: str, group: str, ask: tuple[int, int, int]) -> None:
        used = self._used.get(node_id)
        if used is None:
            used = self._load(node_id)
        used[0] += ask[0]
        used[1] += ask[1]
        used[2] += ask[2]
        self._count(node_id, group, 1)


class Selection:
    __slots__ = ("metric", "node", "ports")

    def __init__(
        self, node: Node | None, metric: AllocMetric, ports: tuple[AllocatedPortMapping, ...] = ()
    ) -> None:
        self.node = node
        self.metric = metric
        self.ports = ports  # the host ports assigned on ``node`` (groups with a network block)


def _distinct_violation(checker: GroupChecker, usage: NodeUsage, node: Node) -> str | None:
    """Why ``node`` breaks a distinct_hosts/distinct_property constraint (None: it does not)."""
    scope = checker.distinct_hosts
    if scope is not None and usage.collisions(node.id, scope) > 0:
        return "distinct_hosts"
    for prop, limit, pscope in checker.distinct_properties:
        value = resolve_target(prop, node)
        if value is None or usage.property_count(prop, pscope, value) >= limit:
            return f"distinct_property {prop}"
    return None


def _stride(n: int, rng: random.Random | None) -> int:
    """A random step coprime with ``n``: ``offset + i * stride (mod n)`` visits every node once."""
    if rng is None or n < 3:
        return 1
    while True:
        step = rng.randrange(1, n)
        if math.gcd(step, n) == 1:
            return step


class Stack:
    """Chooses nodes for one job's placements within one evaluation.

    Nodes are walked in a random permutation (random offset and a random stride coprime with
    the node count: O(1) per eval instead of shuffling every node), continuing where the
    previous placement stopped. Readiness, node pool and datacenter are checked as nodes are
    visited, so an evaluation only touches the nodes it scores.
    """

    __slots__ = (
        "_aligned",
        "_batch",
        "_by_dc",
        "_dcs",
        "_eligible",
        "_job",
        "_limit",
        "_nodes",
        "_offset",
        "_pool",
        "_pos",
        "_rng",
        "_stride",
        "job_id",
        "usage",
    )

    def __init__(
        self,
        job: Job,
        nodes: Sequence[Node],
        usage: NodeUsage,
        *,
        batch: bool,
        rng: random.Random | None = None,
    ) -> None:
        self.job_id = job.id
        self._job = job
        self._nodes = nodes
        n = len(nodes)
        self._offset = rng.randrange(n) if rng is not None and n else 0
        self._stride = _stride(n, rng)
        self._limit = score_limit(n, batch)
        self._pos = 0
        self._rng = rng or random.Random()
        self.usage = usage
        self._batch = batch
        key = (job.node_pool, tuple(job.datacenters))
        self._eligible = _ELIGIBILITY.table(key, n)
        self._aligned = _ELIGIBILITY.aligned(key, nodes)
        self._pool = job.node_pool
        self._dcs: dict[str, bool] = {}
        self._by_dc: dict[str, int] | None = None
        _FACTS.trim(n)

    def _row(self, node: Node) -> _EligibleRow:
        """The node's row in the eligibility table of the job's pool and datacenters."""
        row = self._eligible.get(node.id)
        if row is None or row[0] is not node:
            _, ready, (cpu, mem, disk) = _FACTS.of(node)
            pool = self._pool
            ok = (
                ready
                and (pool == ALL_NODE_POOL or node.node_pool == pool)
                and self._in_datacenter(node.datacenter)
            )
            node_id = node.id
            key = f"{node_id}.normalized-score"
            row = self._eligible[node_id] = (node, ok, cpu, mem, disk, node_id, node.computed_class, key)
        return row

    def _node_ok(self, node: Node) -> bool:
        return self._row(node)[1]

    def _in_datacenter(self, datacenter: str) -> bool:
        ok = self._dcs.get(datacenter)
        if ok is None:
            ok = self._dcs[datacenter] = datacenter_matches(self._job.datacenters, datacenter)
        return ok

    def nodes_available(self) -> dict[str, int]:
        """Ready nodes per datacenter for metrics (computed once, only when needed)."""
        if self._by_dc is None:
            by_dc: dict[str, int] = {}
            for node in self._nodes:
                if self._node_ok(node):
                    by_dc[node.datacenter] = by_dc.get(node.datacenter, 0) + 1
            self._by_dc = by_dc
        return dict(self._by_dc)

    def select(
        self,
        group: str,
        checker: GroupChecker,
        ask: tuple[int, int, int],
        desired_count: int,
        penalty_nodes: frozenset[str] = frozenset(),
        only: Node | None = None,
        ports: PortAsk | None = None,
    ) -> Selection:
        """The best of up to ``limit`` fitting nodes, or ``Selection(None, why)``.

        As Nomad's LimitIterator: up to ``MAX_SKIP`` fitting nodes scoring at most
        ``SKIP_SCORE_THRESHOLD`` (a node the job's anti-affinity or a reschedule penalty marks
        down) are passed over and do not count toward the limit; they are chosen only when every
        node was visited without ``limit`` others. ``only`` restricts the choice to one node the
        caller found eligible (system jobs).
        """
        start = time.perf_counter_ns()
        nodes: Sequence[Node]
        rows: list[_EligibleRow | None]
        if only is None:
            nodes, rows, limit, stride = self._nodes, self._aligned, self._limit, self._stride
            n = len(nodes)
            idx = (self._offset + self._pos * stride) % n if n else 0
            max_skip = MAX_SKIP
        else:  # one node, eligible as the caller found: scored unless it does not fit
            _, _, cpu, mem, disk, node_id, node_class, key = self._row(only)
            nodes, rows = (only,), [(only, True, cpu, mem, disk, node_id, node_class, key)]
            n, limit, stride, idx, max_skip = 1, 1, 1, 0, 0
        usage = self.usage
        ineligible = filtered = exhausted = visited = found = 0
        dims: dict[str, int] = {}
        best: Node | None = None
        best_score = -math.inf
        scores: list[tuple[float, str, str]] = []  # (score, node ID, its key in the metric)
        skipped: list[tuple[float, Node]] = []  # fitting nodes passed over for a low score
        # The hot loop of every placement (some 20 nodes visited, 10 scored): what does not
        # change per node is read once here, NodeUsage's dicts are read directly, a node's row
        # (by position) holds what it needs of the node, and binpack_score is written inline.
        used_rows = usage._used
        base, freed = usage._base, usage._plan.freed
        any_freed = bool(freed)  # mostly not: then no lookup in it per node
        collisions_of = usage._counts.get(group, {})
        penalized = bool(penalty_nodes)
        feasible = checker.feasible
        classes = checker.feasible_classes()
        distinct = checker.distinct_hosts is not None or bool(checker.distinct_properties)
        ask_cpu, ask_mem, ask_disk = ask
        assigned: dict[str, tuple[AllocatedPortMapping, ...]] = {}
        port_ask = ports if ports else None  # tested once, not by a __bool__ call per node visited
        while found < limit and visited < n:
            row = rows[idx]
            if row is None:
                row = rows[idx] = self._row(nodes[idx])
            idx += stride  # offset + (pos + visited) * stride, mod n
            if idx >= n:
                idx -= n
            visited += 1
            node, ok, cap_cpu, cap_mem, cap_disk, node_id, node_class, score_key = row
            if not ok:
                ineligible += 1
                continue
            # a node class already found feasible needs no call (GroupChecker.feasible's cache)
            if (classes is None or classes.get(node_class, False) is not None) and not feasible(node):
                filtered += 1
                continue
            if distinct:
                why = _distinct_violation(checker, usage, node)
                if why is not None:
                    filtered += 1
                    checker.constraint_filtered[why] = checker.constraint_filtered.get(why, 0) + 1
                    continue
            used: Sequence[int] | None = used_rows.get(node_id)
            if used is None:  # a node this eval has not changed: read its row in the state
                if base is None or (any_freed and node_id in freed):
                    used = usage._load(node_id)
                else:
                    used = base.get(node_id, _ZERO_USE)
            cpu, mem = used[0] + ask_cpu, used[1] + ask_mem
            if cpu > cap_cpu or mem > cap_mem or used[2] + ask_disk > cap_disk:
                short = "cpu" if cpu > cap_cpu else "memory" if mem > cap_mem else "disk"
                exhausted += 1
                dims[short] = dims.get(short, 0) + 1
                continue
            if port_ask is not None:
                plan = usage._plan
                in_use = used_ports(
                    usage._state, plan.stopped, plan.node_allocation.get(node_id, ()), node_id
                )
                got = assign(node, in_use, port_ask, self._rng)
                if isinstance(got, str):
                    exhausted += 1
                    dims[got] = dims.get(got, 0) + 1
                    continue
                assigned[node_id] = got
            fit = 20.0 - (
                10.0 ** (1.0 - cpu / cap_cpu if cap_cpu > 0 else 0.0)
                + 10.0 ** (1.0 - mem / cap_mem if cap_mem > 0 else 0.0)
            )
            score = 1.0 if fit > BINPACK_MAX_SCORE else fit / BINPACK_MAX_SCORE if fit > 0.0 else 0.0
            parts = 1
            collisions = collisions_of.get(node_id, 0)
            if collisions > 0 and desired_count > 0:
                score += -(collisions + 1) / desired_count
                parts += 1
            if penalized and node_id in penalty_nodes:
                score += -1.0
                parts += 1
            score /= parts
            scores.append((score, node_id, score_key))
            if score <= SKIP_SCORE_THRESHOLD and len(skipped) < max_skip:
                skipped.append((score, node))
                continue
            found += 1
            if score > best_score:
                best, best_score = node, score
        # every node visited with fewer than ``limit`` options: the skipped ones are options too
        if skipped:
            for score, node in skipped[: max(0, limit - found)]:
                if score > best_score:
                    best, best_score = node, score
        if only is None and n:
            self._pos = (self._pos + visited) % n
        scores.sort(reverse=True)
        metric = _metric(
            _NO_METRIC,
            visited - ineligible,
            filtered,
            n,
            self.nodes_available() if best is None else {},
            dict(checker.class_filtered),
            dict(checker.constraint_filtered),
            exhausted,
            {},  # class_exhausted
            dims,
            {key: score for score, _, key in scores[:MAX_SCORES_IN_METRIC]},
            time.perf_counter_ns() - start,
        )
        if best is not None:
            usage.add(best.id, group, ask)
            for prop, _, scope in checker.distinct_properties:
                if scope in ("", group):
                    usage.count_property(prop, scope, best)
        return Selection(best, metric, assigned.get(best.id, ()) if best is not None else ())
