"""``Job.Plan``: the scheduler's dry run of a job registration (Nomad's Job.Plan).

The job is canonicalized and validated like a register, then the real scheduler of its type
runs on a snapshot in which the job is already stored (as the next version when its spec
changed, unchanged otherwise), with a :class:`RecordingPlanner` that keeps the plans instead of
submitting them: nothing reaches Raft. What the plans would do is counted per task group as
Nomad's ``DesiredUpdates`` (place, stop, migrate, in-place and destructive updates, ignore), and
the job diff against the stored version is annotated with those counts.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from nomadd.scheduler import SCHEDULERS
from nomadd.scheduler.context import ALLOC_MIGRATING, ALLOC_UPDATING
from nomadd.scheduler.protocols import State
from nomadd.server.alloc_endpoint import new_eval
from nomadd.server.state import store_jobs
from nomadd.server.worker import SnapshotState
from nomadd.structs.alloc import Allocation, AllocDesiredStatus
from nomadd.structs.deployment import Deployment
from nomadd.structs.errors import ValidationError
from nomadd.structs.eval import EvalTrigger, Evaluation
from nomadd.structs.job import Job
from nomadd.structs.job_diff import annotate, job_diff
from nomadd.structs.node import Node
from nomadd.structs.plan import Plan, PlanResult

__all__ = ["PlanOutcome", "RecordingPlanner", "desired_updates", "dry_run", "planned_job"]

UPDATE_KEYS = (
    "Ignore",
    "Place",
    "Migrate",
    "Stop",
    "InPlaceUpdate",
    "DestructiveUpdate",
    "Canary",
    "Preemptions",
)


class _PlannedState:
    """A snapshot in which one job reads as ``job`` (the scheduler's ``State``)."""

    def __init__(self, base: SnapshotState, job: Job) -> None:
        self._base = base
        self._job = job

    def latest_index(self) -> int:
        return self._base.latest_index()

    def nodes(self) -> Iterable[Node]:
        return self._base.nodes()

    def node_by_id(self, node_id: str) -> Node | None:
        return self._base.node_by_id(node_id)

    def job_by_id(self, namespace: str, job_id: str) -> Job | None:
        if (namespace, job_id) == (self._job.namespace, self._job.id):
            return self._job
        return self._base.job_by_id(namespace, job_id)

    def allocs_by_job(self, namespace: str, job_id: str) -> Sequence[Allocation]:
        return self._base.allocs_by_job(namespace, job_id)

    def allocs_by_node(self, node_id: str) -> Sequence[Allocation]:
        return self._base.allocs_by_node(node_id)

    def latest_deployment(self, namespace: str, job_id: str) -> Deployment | None:
        return self._base.latest_deployment(namespace, job_id)


class RecordingPlanner:
    """A ``Planner`` that commits nothing: every plan "fully commits" and is kept."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.plans: list[Plan] = []
        self.created: list[Evaluation] = []
        self.outcome: Evaluation | None = None

    async def submit_plan(self, plan: Plan) -> PlanResult:
        self.plans.append(plan)
        return PlanResult(
            node_update=plan.node_update,
            node_allocation=plan.node_allocation,
            alloc_index=self.state.latest_index(),
        )

    async def refresh_state(self, min_index: int) -> State:
        return self.state

    async def update_eval(self, evaluation: Evaluation) -> None:
        self.outcome = evaluation

    async def create_eval(self, evaluation: Evaluation) -> None:
        self.created.append(evaluation)

    async def reblock_eval(self, evaluation: Evaluation) -> None:
        self.outcome = evaluation


def planned_job(old: Job | None, job: Job, index: int) -> Job:
    """``job`` as the store would hold it after the register (Nomad upserts it into the plan's
    snapshot): the stored job when the spec did not change, else its next version."""
    if old is not None and old.spec_equal(job):
        return old
    return dataclasses.replace(
        job,
        version=old.version + 1 if old is not None else 0,
        create_index=old.create_index if old is not None else index,
        modify_index=index,
        job_modify_index=index,
        stable=False,
    )


def desired_updates(
    job: Job, existing: Sequence[Allocation], plans: Sequence[Plan], queued: Mapping[str, int]
) -> dict[str, dict[str, int]]:
    """Nomad's ``DesiredTGUpdates`` counted from what the plans would change."""
    groups = {tg.name for tg in job.task_groups} | {a.task_group for a in existing}
    out: dict[str, dict[str, int]] = {g: dict.fromkeys(UPDATE_KEYS, 0) for g in sorted(groups)}
    live = {
        a.id: a for a in existing if a.desired_status == AllocDesiredStatus.RUN and not a.client_terminal()
    }
    known = frozenset(a.id for a in existing)
    touched: set[str] = set()
    replaced: set[str] = set()
    for plan in plans:
        for stops in plan.node_update.values():
            for alloc in stops:
                counts = out.setdefault(alloc.task_group, dict.fromkeys(UPDATE_KEYS, 0))
                touched.add(alloc.id)
                if alloc.desired_description == ALLOC_UPDATING:
                    counts["DestructiveUpdate"] += 1
                    replaced.add(alloc.id)
                elif alloc.desired_description == ALLOC_MIGRATING:
                    counts["Migrate"] += 1
                    replaced.add(alloc.id)
                else:
                    counts["Stop"] += 1
        for placed in plan.node_allocation.values():
            for alloc in placed:
                counts = out.setdefault(alloc.task_group, dict.fromkeys(UPDATE_KEYS, 0))
                if alloc.id in live:
                    touched.add(alloc.id)
                    counts["InPlaceUpdate"] += 1
                elif alloc.previous_allocation not in replaced and alloc.id not in known:
                    counts["Place"] += 1
    for group, n in queued.items():  # placements the dry run could not make are still wanted
        out.setdefault(group, dict.fromkeys(UPDATE_KEYS, 0))["Place"] += n
    for alloc in live.values():
        if alloc.id not in touched:
            out.setdefault(alloc.task_group, dict.fromkeys(UPDATE_KEYS, 0))["Ignore"] += 1
    return out


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class PlanOutcome:
    job_modify_index: int
    diff: dict[str, Any] | None
    desired: dict[str, dict[str, int]]
    outcome: Evaluation | None
    created: tuple[Evaluation, ...]


async def dry_run(snapshot: SnapshotState, job: Job, *, want_diff: bool) -> PlanOutcome:
    """Run the job type's scheduler on ``snapshot`` with ``job`` registered; commit nothing."""
    factory = SCHEDULERS.get(str(job.type))
    if factory is None:
        raise ValidationError(f"Job.Type: no scheduler for job type {str(job.type)!r}")
    old = store_jobs.get_job(snapshot.snap, job.namespace, job.id)
    planned = planned_job(old, job, snapshot.latest_index() + 1)
    state = _PlannedState(snapshot, planned)
    planner = RecordingPlanner(state)
    ev = dataclasses.replace(
        new_eval(
            job_id=job.id,
            namespace=job.namespace,
            job_type=str(job.type),
            priority=job.priority,
            trigger=EvalTrigger.JOB_REGISTER,
            now_ns=time.time_ns(),
            job_modify_index=planned.job_modify_index,
        ),
        modify_index=snapshot.latest_index(),
    )
    await factory(state, planner).process(ev)
    existing = state.allocs_by_job(job.namespace, job.id)
    queued = dict(planner.outcome.queued_allocations) if planner.outcome is not None else {}
    failed_groups = set(planner.outcome.failed_tg_allocs) if planner.outcome is not None else set()
    desired = desired_updates(planned, existing, planner.plans, {g: queued.get(g, 0) for g in failed_groups})
    diff = annotate(job_diff(old, planned), desired) if want_diff else None
    return PlanOutcome(
        job_modify_index=old.job_modify_index if old is not None else 0,
        diff=diff,
        desired=desired,
        outcome=planner.outcome,
        created=tuple(planner.created),
    )
