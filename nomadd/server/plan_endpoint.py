"""``Plan.Submit`` (Nomad's plan_endpoint.go): a follower's worker hands its plans to the
leader's plan applier. Servers only (``nomadd.rpc.auth``); runs on the leader (``write``).

Each item names the eval it belongs to and the token of that eval's delivery: an item whose
token is not the broker's outstanding one is refused (a worker that lost its eval to a nack
timeout cannot still place it). The plan comes without its job; the leader attaches its stored
version (``job_of_modify_index``), so an item whose job version is gone is refused and the
worker's eval is retried. Items are submitted together, so they share the applier's entries
as the leader's own workers' plans do.
"""

from __future__ import annotations

import asyncio
import dataclasses

from nomadd.rpc import RPCRegistry
from nomadd.server.eval_broker import EvalBroker
from nomadd.server.fsm.plan import decode_plan_results, encode_plan_results
from nomadd.server.plan_apply import PlanApplier
from nomadd.server.state import store_jobs
from nomadd.server.state.store import StateStore
from nomadd.structs.alloc import Allocation
from nomadd.structs.errors import NomaddError, ValidationError
from nomadd.structs.plan import Plan
from nomadd.structs.requests.plan import PlanEntry, PlanResultsEntry
from nomadd.structs.requests.scheduling import (
    PLAN_SUBMIT,
    PlanOutcome,
    PlanSubmitItem,
    PlanSubmitReply,
    PlanSubmitRequest,
)

__all__ = ["PlanEndpoint", "encode_plan_allocs"]


class PlanEndpoint:
    def __init__(self, store: StateStore, broker: EvalBroker, applier: PlanApplier) -> None:
        self._store = store
        self._broker = broker
        self._applier = applier

    def register(self, registry: RPCRegistry) -> None:
        registry.register(PLAN_SUBMIT, self.submit, kind="write")

    async def submit(self, req: PlanSubmitRequest) -> PlanSubmitReply:
        outcomes = await asyncio.gather(*(self._one(item) for item in req.items))
        return PlanSubmitReply(outcomes=tuple(outcomes))

    async def _one(self, item: PlanSubmitItem) -> PlanOutcome:
        try:
            self._broker.check_token(item.eval_id, item.token)
            plan = _with_allocs(item.plan, item.allocs)
            if item.job_id:
                snap = self._store.snapshot()
                job = store_jobs.job_of_modify_index(
                    snap, item.job_namespace, item.job_id, item.job_modify_index
                )
                if job is None:
                    return PlanOutcome(error=f"job {item.job_id!r} version {item.job_modify_index} is gone")
                plan = dataclasses.replace(plan, job=job)
            result = await self._applier.submit(plan, item.evals)
        except NomaddError as err:
            return PlanOutcome(error=str(err))
        return PlanOutcome.of(result)


def encode_plan_allocs(plan: Plan) -> bytes:
    """The plan's placements and stops in the compact form of a ``PLAN_RESULTS`` entry."""
    if not plan.node_allocation and not plan.node_update:
        return b""
    places = tuple(a for v in plan.node_allocation.values() for a in v)
    stops = tuple(a for v in plan.node_update.values() for a in v)
    return encode_plan_results(PlanResultsEntry(plans=(PlanEntry(placements=places, stops=stops),)))


def _with_allocs(plan: Plan, allocs: bytes) -> Plan:
    """``plan`` with the allocations of :func:`encode_plan_allocs` back, per node in order.
    The body is a server's (signed): decoded as trusted as a Raft entry; malformed, it fails
    the item."""
    if not allocs:
        return plan
    try:
        entry = decode_plan_results(allocs).plans[0]
    except Exception as err:
        raise ValidationError(f"plan of eval {plan.eval_id}: malformed allocations: {err!r}") from err
    return dataclasses.replace(
        plan, node_allocation=_by_node(entry.placements), node_update=_by_node(entry.stops)
    )


def _by_node(allocs: tuple[Allocation, ...]) -> dict[str, tuple[Allocation, ...]]:
    out: dict[str, list[Allocation]] = {}
    for a in allocs:
        out.setdefault(a.node_id, []).append(a)
    return {node_id: tuple(v) for node_id, v in out.items()}
