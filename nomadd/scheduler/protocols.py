"""The scheduler's only view of the world: a read-only ``State`` snapshot and a ``Planner``.

The server's worker passes a state-store snapshot as ``State`` and itself as ``Planner``; tests
pass :class:`nomadd.scheduler.testing.Harness`, which is both.

Contract for ``State``:

* allocations it returns carry ``job`` set to the job version they were placed with (the plan
  applier attaches ``Plan.job`` to the allocations it stores, as Nomad denormalizes), and include
  terminal ones (the scheduler needs completed batch allocations and failed ones);
* storing an allocation whose ``previous_allocation`` is set also sets ``next_allocation`` on the
  previous one (Nomad's state store does this), so a replaced allocation is not replaced twice.

Contract for ``Planner`` (async: the worker lives on the agent's asyncio loop):

* ``submit_plan`` re-checks the plan against current state and commits what still fits.
  Allocations in ``node_allocation`` whose ID already exists are in-place updates; entries in
  ``node_update`` are stops (desired status, description and maybe ``client_status=lost``).
  A partial commit sets ``PlanResult.refresh_index``; the scheduler then calls ``refresh_state``
  and plans again.
* ``update_eval`` stores the processed evaluation (complete/failed, queued allocations...);
  ``create_eval`` stores a new one (blocked or follow-up); ``reblock_eval`` hands a blocked
  evaluation that still cannot place back to the blocked-evals tracker.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Protocol, runtime_checkable

from nomadd.structs.alloc import Allocation
from nomadd.structs.deployment import Deployment
from nomadd.structs.eval import Evaluation
from nomadd.structs.job import Job
from nomadd.structs.node import Node
from nomadd.structs.plan import Plan, PlanResult

__all__ = ["NodeUsageIndex", "Planner", "Scheduler", "SchedulerFactory", "State"]


class State(Protocol):
    """A consistent, read-only snapshot of the cluster state."""

    def latest_index(self) -> int:
        """The Raft index this snapshot reflects."""
        ...

    def nodes(self) -> Iterable[Node]: ...

    def node_by_id(self, node_id: str) -> Node | None: ...

    def job_by_id(self, namespace: str, job_id: str) -> Job | None: ...

    def allocs_by_job(self, namespace: str, job_id: str) -> Sequence[Allocation]:
        """Every allocation of the job, terminal ones included."""
        ...

    def allocs_by_node(self, node_id: str) -> Sequence[Allocation]:
        """Every allocation on the node, terminal ones included."""
        ...

    def latest_deployment(self, namespace: str, job_id: str) -> Deployment | None:
        """The job's most recent deployment (any status), or None."""
        ...


@runtime_checkable
class NodeUsageIndex(Protocol):
    """Optional fast path a ``State`` may also offer (the scheduler checks with isinstance).

    Without it the scheduler sums ``allocs_by_node`` for every node it scores, which costs
    O(allocations on the node) per candidate; a state store that keeps this running total
    (updated on every alloc write) makes scoring O(1) per node.
    """

    def node_usage(self, node_id: str) -> tuple[int, int, int]:
        """Summed ``allocated_resources.comparable()`` of the node's non-terminal allocations."""
        ...


class Planner(Protocol):
    async def submit_plan(self, plan: Plan) -> PlanResult: ...

    async def refresh_state(self, min_index: int) -> State:
        """A snapshot at least as new as ``min_index`` (after a partial commit)."""
        ...

    async def update_eval(self, evaluation: Evaluation) -> None: ...

    async def create_eval(self, evaluation: Evaluation) -> None: ...

    async def reblock_eval(self, evaluation: Evaluation) -> None: ...


class Scheduler(Protocol):
    async def process(self, evaluation: Evaluation) -> None:
        """Reconcile the evaluation's job, submit plans, and record the evaluation's outcome."""
        ...


class SchedulerFactory(Protocol):
    def __call__(
        self,
        state: State,
        planner: Planner,
        *,
        seed: int | None = None,
        new_id: Callable[[], str] | None = None,
        now_ns: Callable[[], int] | None = None,
    ) -> Scheduler: ...
