"""The ``PLAN_RESULTS`` entry of the Raft log: what the plan applier commits.

One entry holds the checked parts of a batch of plans and the evaluations the workers wrote
meanwhile (outcomes, blocked and follow-up evals), so a batch costs one Raft round trip. On the
wire the placements of each plan travel as one allocation and the others' differences from it
(``server/fsm/plan.py``); every server's FSM gets this struct with whole allocations either way.
"""

from __future__ import annotations

from dataclasses import dataclass

from nomadd.structs.alloc import Allocation
from nomadd.structs.deployment import Deployment, DeploymentStatusUpdate
from nomadd.structs.eval import Evaluation
from nomadd.structs.job import Job

__all__ = ["PlanEntry", "PlanResultsEntry"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanEntry:
    """The committed part of one plan.

    ``placements`` are new or updated allocations; when the plan has a job they carry
    ``job=None`` and the FSM attaches the stored job of that version. The plan applier names the
    job by ``job_ref`` (namespace, ID, JobModifyIndex): it was committed before the plan was
    made, so every server finds it in its jobs or job_versions table, and ``job`` (the
    proposer's own copy) never travels. Entries written before ``job_ref`` existed carry
    ``job`` inline and no ``job_ref``. ``stops`` only need their ID and status fields (desired
    status/description/transition, lost, follow-up).
    """

    job: Job | None = None
    job_ref: tuple[str, str, int] | None = None
    placements: tuple[Allocation, ...] = ()
    stops: tuple[Allocation, ...] = ()
    deployment: Deployment | None = None  # created or updated by the plan (its counters move in the FSM)
    deployment_updates: tuple[DeploymentStatusUpdate, ...] = ()  # e.g. an older one cancelled


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanResultsEntry:
    plans: tuple[PlanEntry, ...] = ()
    evals: tuple[Evaluation, ...] = ()
