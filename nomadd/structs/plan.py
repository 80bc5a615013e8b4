"""Plans: what a scheduler wants changed, and what the plan applier committed of it."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import field

from nomadd.structs.alloc import Allocation
from nomadd.structs.deployment import Deployment, DeploymentStatusUpdate
from nomadd.structs.job import Job

__all__ = ["Plan", "PlanResult"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """One scheduler pass over one evaluation.

    ``node_update`` lists allocations to stop (desired status stop/evict, or marked lost) per
    node; ``node_allocation`` new or updated allocations per node. Allocations in a plan carry
    ``job=None``: the plan's ``job`` applies to all of them (the applier attaches it).
    """

    eval_id: str = ""
    priority: int = 50
    all_at_once: bool = False
    job: Job | None = None
    node_update: Mapping[str, tuple[Allocation, ...]] = field(default_factory=dict)
    node_allocation: Mapping[str, tuple[Allocation, ...]] = field(default_factory=dict)
    snapshot_index: int = 0
    deployment: Deployment | None = None  # created by this plan (or the current one, unchanged)
    deployment_updates: tuple[DeploymentStatusUpdate, ...] = ()

    def is_no_op(self) -> bool:
        return (
            not self.node_update
            and not self.node_allocation
            and self.deployment is None
            and not self.deployment_updates
        )

    def placements(self) -> int:
        return sum(len(v) for v in self.node_allocation.values())


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class PlanResult:
    """What was committed. A node missing from the result was rejected (no longer fits)."""

    node_update: Mapping[str, tuple[Allocation, ...]] = field(default_factory=dict)
    node_allocation: Mapping[str, tuple[Allocation, ...]] = field(default_factory=dict)
    refresh_index: int = 0  # non-zero: the scheduler's snapshot is stale, refresh to this
    alloc_index: int = 0  # Raft index the plan was committed at

    def full_commit(self, plan: Plan) -> tuple[bool, int, int]:
        """(everything committed?, placements+stops expected, placements+stops committed)."""
        expected = sum(len(v) for v in plan.node_allocation.values()) + sum(
            len(v) for v in plan.node_update.values()
        )
        actual = sum(len(v) for v in self.node_allocation.values()) + sum(
            len(v) for v in self.node_update.values()
        )
        return actual == expected, expected, actual
