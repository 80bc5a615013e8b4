"""FSM cases of the allocation writes: ``PLAN_RESULTS`` (the plan applier) and ``ALLOC_UPDATE``
(``Alloc.Stop``'s desired transitions), and the wire form of ``PLAN_RESULTS``.

A ``PLAN_RESULTS`` entry travels with each plan's placements as the first allocation in full and
the others as their differences from it (``codec_diff``; the allocations of one plan share
most fields: job, group, resources, eval), and without the job: the plan names it by
(namespace, ID, JobModifyIndex) and each server attaches its stored copy of that version, which
it holds because the job was committed before the plan was made. :func:`decode_plan_results` rebuilds the same
:class:`PlanResultsEntry` the leader proposed, with whole allocations, so the leader (which
applies its own struct) and the followers (which decode the bytes) run one apply function.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import msgpack  # type: ignore[import-untyped]

from nomadd.server.fsm.deployment import apply_plan_deployment
from nomadd.server.state import store_allocs, store_evals, store_jobs
from nomadd.server.state.store import Txn
from nomadd.server.state.store_evals import ApplyResult
from nomadd.structs.alloc import Allocation
from nomadd.structs.codec import from_wire, to_wire
from nomadd.structs.codec_diff import from_wire_over, replacer, to_wire_diff
from nomadd.structs.deployment import Deployment, DeploymentStatusUpdate
from nomadd.structs.eval import Evaluation
from nomadd.structs.job import Job
from nomadd.structs.requests.alloc import AllocUpdateEntry
from nomadd.structs.requests.plan import PlanEntry, PlanResultsEntry

logger = logging.getLogger(__name__)

__all__ = ["apply_alloc_update", "apply_plan_results", "decode_plan_results", "encode_plan_results"]

_without_job = replacer(Allocation, "job")


# ---- apply ---------------------------------------------------------------------------------


def _plan_job(txn: Txn, plan: PlanEntry) -> Job | None:
    """The stored job the plan was made for. None when it is gone (purged, or more than
    JobTrackedVersions newer versions registered since): then every server alike drops the
    plan's placements (the plan applier refuses such placements already; this is the race).
    An entry of the older format carries its job: the stored object when it is that version."""
    if plan.job_ref is not None:
        return store_jobs.job_of_modify_index(txn, *plan.job_ref)
    job = plan.job
    if job is None:
        return None
    return store_jobs.job_of_modify_index(txn, job.namespace, job.id, job.job_modify_index) or job


def apply_plan_results(txn: Txn, entry: PlanResultsEntry) -> ApplyResult:
    placed = stopped = 0
    for plan in entry.plans:
        if plan.deployment is not None or plan.deployment_updates:
            apply_plan_deployment(txn, plan)
        job = _plan_job(txn, plan)
        allocs = plan.placements  # upsert_plan_locked gives each its stored form (a copy)
        if job is None and plan.job_ref is not None and allocs:
            logger.warning(
                "plan placements dropped: job version gone namespace=%s job=%s job_modify_index=%d allocs=%d",
                *plan.job_ref,
                len(allocs),
            )
            allocs = ()
        n_placed, n_stopped = store_allocs.upsert_plan_locked(txn, job, allocs, plan.stops)
        placed += n_placed
        stopped += n_stopped
    evals = store_evals.upsert_evals_locked(txn, entry.evals)
    return ApplyResult(evals=tuple(evals), placed=placed, stopped=stopped, freed=stopped > 0)


def apply_alloc_update(txn: Txn, entry: AllocUpdateEntry) -> ApplyResult:
    for t in entry.transitions:
        old = store_allocs.get_alloc(txn, t.alloc_id)
        if old is not None:
            store_allocs.put_locked(
                txn, dataclasses.replace(old, desired_transition=t.transition, modify_index=txn.index)
            )
    evals = store_evals.upsert_evals_locked(txn, entry.evals)
    return ApplyResult(evals=tuple(evals))


# ---- wire form of PLAN_RESULTS -------------------------------------------------------------


def _plan_wire(plan: PlanEntry) -> dict[str, Any]:
    ref = plan.job_ref
    out: dict[str, Any] = {"stops": [to_wire(_without_job(a, None)) for a in plan.stops]}  # status fields
    if ref is not None:
        out["job_ref"] = list(ref)
    elif plan.job is not None:
        out["job"] = to_wire(plan.job)
    if plan.deployment is not None:
        out["deployment"] = to_wire(plan.deployment)
    if plan.deployment_updates:
        out["deployment_updates"] = [to_wire(u) for u in plan.deployment_updates]
    if plan.placements:
        first = plan.placements[0]
        has_job = ref is not None or plan.job is not None
        out["alloc_base"] = to_wire(_without_job(first, None) if has_job and first.job is not None else first)
        out["alloc_diffs"] = [to_wire_diff(first, a) for a in plan.placements[1:]]
    return out


def encode_plan_results(entry: PlanResultsEntry) -> bytes:
    wire = {"plans": [_plan_wire(p) for p in entry.plans], "evals": [to_wire(e) for e in entry.evals]}
    packed: bytes = msgpack.packb(wire, use_bin_type=True)
    return packed


def _plan_from_wire(wire: dict[str, Any]) -> PlanEntry:
    job = from_wire(Job, wire["job"]) if wire.get("job") else None  # the older format
    raw_ref = wire.get("job_ref")
    ref: tuple[str, str, int] | None = None
    if raw_ref is not None:
        namespace, job_id, job_modify_index = raw_ref
        ref = (str(namespace), str(job_id), int(job_modify_index))
    placements: tuple[Allocation, ...] = ()
    if wire.get("alloc_base"):
        base = from_wire(Allocation, wire["alloc_base"])
        rest = (from_wire_over(Allocation, d, base) for d in wire.get("alloc_diffs") or ())
        placements = (base, *rest)
    stops = tuple(from_wire(Allocation, a) for a in wire.get("stops") or ())
    deployment = from_wire(Deployment, wire["deployment"]) if wire.get("deployment") else None
    updates = tuple(from_wire(DeploymentStatusUpdate, u) for u in wire.get("deployment_updates") or ())
    return PlanEntry(
        job=job,
        job_ref=ref,
        placements=placements,
        stops=stops,
        deployment=deployment,
        deployment_updates=updates,
    )


def decode_plan_results(payload: bytes) -> PlanResultsEntry:
    wire = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    if not isinstance(wire, dict):
        raise TypeError(f"plan results payload is {type(wire).__name__}, want a map")
    return PlanResultsEntry(
        plans=tuple(_plan_from_wire(p) for p in wire.get("plans") or ()),
        evals=tuple(from_wire(Evaluation, e) for e in wire.get("evals") or ()),
    )
