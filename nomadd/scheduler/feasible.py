"""Feasibility: may a task group run on a node at all (before resources and ranking)?

Checks, in Nomad's order: datacenter (``*`` globs) and node pool, node readiness (status ready,
eligible, not draining), drivers (detected and healthy), host volumes, then job, group and task
constraints.
``distinct_hosts`` and ``distinct_property`` depend on where the job's allocations are, so
the ranking ``Stack`` checks them with the plan in view (see ``rank.py``).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache

from nomadd.structs.constraint import Constraint, ConstraintOperand
from nomadd.structs.job import Job, TaskGroup
from nomadd.structs.node import Node
from nomadd.structs.volumes import node_has_volumes

__all__ = [
    "ALL_NODE_POOL",
    "GroupChecker",
    "check_constraint",
    "datacenter_matches",
    "group_constraints",
    "ready_nodes_in",
    "resolve_target",
]

ALL_NODE_POOL = "all"  # Nomad's built-in pool that spans every node
FILTER_HOST_VOLUMES = "missing compatible host volumes"  # Nomad's FilterConstraintHostVolumes

_Op = ConstraintOperand
# Constraints evaluated against placements, not against the node alone.
_PLACEMENT_OPERANDS = frozenset({_Op.DISTINCT_HOSTS, _Op.DISTINCT_PROPERTY})


def datacenter_matches(patterns: Sequence[str], datacenter: str) -> bool:
    """Whether ``datacenter`` matches one of the job's datacenters (``*`` and ``?`` globs)."""
    for pattern in patterns:
        if pattern == datacenter or pattern == "*":
            return True
        if ("*" in pattern or "?" in pattern) and fnmatch.fnmatchcase(datacenter, pattern):
            return True
    return False


_NODE_FIELDS: dict[str, Callable[[Node], str]] = {
    "node.unique.id": lambda n: n.id,
    "node.unique.name": lambda n: n.name,
    "node.datacenter": lambda n: n.datacenter,
    "node.class": lambda n: n.node_class,
    "node.pool": lambda n: n.node_pool,
}


def resolve_target(target: str, node: Node) -> str | None:
    """The value of a constraint target on ``node`` (None when the node does not have it).

    ``${attr.X}``, ``${meta.X}``, ``${node.unique.id|unique.name|datacenter|class|pool}``; any
    other text is a literal.
    """
    if not target.startswith("${") or not target.endswith("}"):
        return target
    name = target[2:-1]
    if name.startswith("attr."):
        return node.attributes.get(name[5:])
    if name.startswith("meta."):
        return node.meta.get(name[5:])
    getter = _NODE_FIELDS.get(name)
    if getter is not None:
        return getter(node)
    return None


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _compare(op: str, left: str, right: str) -> bool:
    ln, rn = _number(left), _number(right)
    a: float | str
    b: float | str
    if ln is not None and rn is not None:
        a, b = ln, rn
    else:
        a, b = left, right
    if op == _Op.LT:
        return a < b  # type: ignore[operator]
    if op == _Op.LTE:
        return a <= b  # type: ignore[operator]
    if op == _Op.GT:
        return a > b  # type: ignore[operator]
    return a >= b  # type: ignore[operator]


@lru_cache(maxsize=512)
def _regexp(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None


_VERSION = re.compile(r"^v?(\d+(?:\.\d+)*)")
_CONSTRAINT_PART = re.compile(r"^\s*(>=|<=|!=|=|>|<|~>)?\s*v?(\d+(?:\.\d+)*)")


def _version_tuple(text: str) -> tuple[int, ...] | None:
    m = _VERSION.match(text.strip())
    if m is None:
        return None
    return tuple(int(p) for p in m.group(1).split("."))


def _pad(a: tuple[int, ...], n: int) -> tuple[int, ...]:
    return a + (0,) * (n - len(a))


@lru_cache(maxsize=512)
def _version_check(constraint: str, value: str) -> bool:
    have = _version_tuple(value)
    if have is None:
        return False
    for part in constraint.split(","):
        m = _CONSTRAINT_PART.match(part)
        if m is None:
            return False
        op = m.group(1) or "="
        want = tuple(int(p) for p in m.group(2).split("."))
        n = max(len(want), len(have))
        h, w = _pad(have, n), _pad(want, n)
        if op == "~>":
            # pessimistic: >= want, and same prefix except the last given component
            prefix = len(want) - 1 if len(want) > 1 else 1
            if h < w or h[:prefix] != w[:prefix]:
                return False
            continue
        ok = {
            "=": h == w,
            "!=": h != w,
            ">": h > w,
            ">=": h >= w,
            "<": h < w,
            "<=": h <= w,
        }[op]
        if not ok:
            return False
    return True


def _set(text: str) -> set[str]:
    return {p.strip() for p in text.split(",") if p.strip()}


def check_constraint(constraint: Constraint, node: Node) -> bool:
    """Whether ``node`` satisfies a node-level constraint (Nomad's checkConstraint)."""
    op = constraint.operand
    if op in _PLACEMENT_OPERANDS:
        return True
    left = resolve_target(constraint.l_target, node)
    if op == _Op.IS_SET:
        return left is not None
    if op == _Op.IS_NOT_SET:
        return left is None
    right = resolve_target(constraint.r_target, node)
    if op in (_Op.EQUAL, _Op.EQUAL2, _Op.IS):
        return left is not None and right is not None and left == right
    if op in (_Op.NOT_EQUAL, _Op.NOT):
        return left != right
    if left is None or right is None:
        return False
    if op in (_Op.LT, _Op.LTE, _Op.GT, _Op.GTE):
        return _compare(op, left, right)
    if op == _Op.REGEXP:
        pattern = _regexp(right)
        return pattern is not None and pattern.search(left) is not None
    if op in (_Op.VERSION, _Op.SEMVER):
        return _version_check(right, left)
    if op in (_Op.SET_CONTAINS, _Op.SET_CONTAINS_ALL):
        return _set(right) <= _set(left)
    if op == _Op.SET_CONTAINS_ANY:
        return bool(_set(right) & _set(left))
    return False


def group_constraints(job: Job, tg: TaskGroup) -> tuple[Constraint, ...]:
    """Job, group and task constraints that apply to one allocation of ``tg``."""
    out = [*job.constraints, *tg.constraints]
    for task in tg.tasks:
        out.extend(task.constraints)
    return tuple(out)


def _driver_ok(node: Node, driver: str) -> bool:
    info = node.drivers.get(driver)
    if info is not None:
        return info.detected and info.healthy
    # Older clients only set the attribute (Nomad's fallback).
    return node.attributes.get(f"driver.{driver}", "") in ("1", "true")


class GroupChecker:
    """Node feasibility for one task group of one job, with counts of why nodes were filtered.

    ``feasible(node)`` caches per computed class when the node has one and no constraint
    looks at a ``unique.`` property (Nomad's class eligibility).
    """

    __slots__ = (
        "_cacheable",
        "_class_cache",
        "_constraints",
        "_drivers",
        "_volumes",
        "class_filtered",
        "constraint_filtered",
        "distinct_hosts",
        "distinct_properties",
    )

    def __init__(self, job: Job, tg: TaskGroup) -> None:
        constraints = group_constraints(job, tg)
        self._constraints = tuple(c for c in constraints if c.operand not in _PLACEMENT_OPERANDS)
        # distinct_hosts / distinct_property count the job's allocations when set on the job,
        # the group's when set on the group or a task: the scope is "" or the group's name.
        job_level = set(job.constraints)
        self.distinct_hosts: str | None = None
        self.distinct_properties: list[tuple[str, int, str]] = []
        for c in constraints:
            scope = "" if c in job_level else tg.name
            if c.operand == _Op.DISTINCT_HOSTS:
                if self.distinct_hosts is None or scope == "":
                    self.distinct_hosts = scope
            elif c.operand == _Op.DISTINCT_PROPERTY:
                try:
                    limit = int(c.r_target) if c.r_target else 1
                except ValueError:
                    limit = 1
                self.distinct_properties.append((c.l_target, max(limit, 1), scope))
        self._drivers = tuple(sorted({t.driver for t in tg.tasks}))
        self._volumes = tg.volumes  # host volumes are part of the computed class
        self._cacheable = not any(
            "unique." in c.l_target or "unique." in c.r_target for c in self._constraints
        )
        self._class_cache: dict[str, str | None] = {}
        self.constraint_filtered: dict[str, int] = {}
        self.class_filtered: dict[str, int] = {}

    @property
    def escaped(self) -> bool:
        """A constraint looks at unique node properties: class caching is off (Nomad)."""
        return not self._cacheable

    def _why_not(self, node: Node) -> str | None:
        for driver in self._drivers:
            if not _driver_ok(node, driver):
                return f"missing drivers: {driver}"
        if self._volumes and not node_has_volumes(node.host_volumes, self._volumes):
            return FILTER_HOST_VOLUMES
        for c in self._constraints:
            if not check_constraint(c, node):
                return f"{c.l_target} {c.operand} {c.r_target}".strip()
        return None

    def feasible(self, node: Node) -> bool:
        cls = node.computed_class
        if self._cacheable and cls:
            if cls in self._class_cache:
                reason = self._class_cache[cls]
            else:
                reason = self._class_cache[cls] = self._why_not(node)
        else:
            reason = self._why_not(node)
        if reason is None:
            return True
        self.constraint_filtered[reason] = self.constraint_filtered.get(reason, 0) + 1
        if node.node_class:
            self.class_filtered[node.node_class] = self.class_filtered.get(node.node_class, 0) + 1
        return False

    def feasible_classes(self) -> Mapping[str, str | None] | None:
        """Node class -> why it is infeasible (None: feasible) as found so far, when results
        are cached per class (None when they are not: every node is checked)."""
        return self._class_cache if self._cacheable else None

    def class_eligibility(self) -> dict[str, bool]:
        return {cls: reason is None for cls, reason in self._class_cache.items()}


def ready_nodes_in(job: Job, nodes: Iterable[Node]) -> tuple[list[Node], dict[str, int]]:
    """Ready nodes in the job's datacenters and node pool, and how many per datacenter."""
    pool = job.node_pool
    dcs = job.datacenters
    out = []
    by_dc: dict[str, int] = {}
    for node in nodes:
        if not node.ready():
            continue
        if pool != ALL_NODE_POOL and node.node_pool != pool:
            continue
        if not datacenter_matches(dcs, node.datacenter):
            continue
        out.append(node)
        by_dc[node.datacenter] = by_dc.get(node.datacenter, 0) + 1
    return out, by_dc
