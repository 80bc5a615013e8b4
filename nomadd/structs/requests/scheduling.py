"""The RPCs a follower's scheduling workers call on the leader (Nomad's ``Eval.Dequeue``,
``Eval.Ack``, ``Eval.Nack`` and ``Plan.Submit``); servers only (``nomadd.rpc.auth``).

A follower dequeues a batch of evals, each with the token of its delivery; every later call
about an eval (its plans, its eval writes, its ack or nack) carries that token, and the
leader refuses one that does not match the eval's outstanding delivery.
"""

from __future__ import annotations

from dataclasses import dataclass

from nomadd.structs.eval import Evaluation
from nomadd.structs.plan import Plan, PlanResult
from nomadd.structs.requests import Envelope, Method

__all__ = [
    "EVAL_ACK",
    "EVAL_DEQUEUE",
    "EVAL_NACK",
    "PLAN_SUBMIT",
    "DequeuedEval",
    "EvalAckReply",
    "EvalAckRequest",
    "EvalDequeueReply",
    "EvalDequeueRequest",
    "EvalToken",
    "PlanOutcome",
    "PlanSubmitItem",
    "PlanSubmitReply",
    "PlanSubmitRequest",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class EvalDequeueRequest(Envelope):
    timeout_s: float = 0.5  # how long the leader waits for a first ready eval
    max_evals: int = 1  # a batch: one round trip for several evals


@dataclass(frozen=True, slots=True, kw_only=True)
class DequeuedEval:
    eval: Evaluation
    token: str


@dataclass(frozen=True, slots=True, kw_only=True)
class EvalDequeueReply:
    evals: tuple[DequeuedEval, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class EvalToken:
    eval_id: str
    token: str


@dataclass(frozen=True, slots=True, kw_only=True)
class EvalAckRequest(Envelope):
    evals: tuple[EvalToken, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class EvalAckReply:
    refused: tuple[str, ...] = ()  # eval IDs whose token did not match (nothing done for them)
    failed: tuple[str, ...] = ()  # Eval.Nack: dropped at the delivery limit (the leader fails them)


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanSubmitItem:
    """One plan (or, with an empty plan, only eval writes) of the eval ``eval_id``.

    The plan travels without its job: ``job_namespace``/``job_id``/``job_modify_index`` name
    the version the scheduler planned, which the leader has stored (``job_id`` "": no job).
    Its allocations travel in ``allocs`` (``plan`` has no ``node_allocation``/``node_update``)
    in the compact form of a ``PLAN_RESULTS`` entry (``server/fsm/plan.py``: the first placement
    whole, the others as differences from it): a plan of ten placements is 14 KB and 0.37 ms
    to decode field by field, the leader's busiest resource.
    """

    eval_id: str
    token: str
    plan: Plan
    allocs: bytes = b""
    job_namespace: str = ""
    job_id: str = ""
    job_modify_index: int = 0
    evals: tuple[Evaluation, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanSubmitRequest(Envelope):
    items: tuple[PlanSubmitItem, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanOutcome:
    """What the leader committed of one item, without sending the allocations back: a full
    commit (``refresh_index`` 0) is the plan itself; after a partial one, the nodes whose
    placements and whose stops were committed (the follower rebuilds the ``PlanResult``)."""

    alloc_index: int = 0
    refresh_index: int = 0
    placed_nodes: tuple[str, ...] = ()
    stopped_nodes: tuple[str, ...] = ()
    error: str = ""  # the item was not applied (token refused, job gone, leadership lost)

    @classmethod
    def of(cls, result: PlanResult) -> PlanOutcome:
        partial = result.refresh_index != 0
        return cls(
            alloc_index=result.alloc_index,
            refresh_index=result.refresh_index,
            placed_nodes=tuple(result.node_allocation) if partial else (),
            stopped_nodes=tuple(result.node_update) if partial else (),
        )

    def result_of(self, plan: Plan) -> PlanResult:
        """The leader's ``PlanResult`` for ``plan``, rebuilt."""
        if self.refresh_index == 0:
            alloc, update = plan.node_allocation, plan.node_update
        else:
            alloc = {n: plan.node_allocation[n] for n in self.placed_nodes if n in plan.node_allocation}
            update = {n: plan.node_update[n] for n in self.stopped_nodes if n in plan.node_update}
        return PlanResult(
            node_allocation=alloc,
            node_update=update,
            refresh_index=self.refresh_index,
            alloc_index=self.alloc_index,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanSubmitReply:
    outcomes: tuple[PlanOutcome, ...] = ()


EVAL_DEQUEUE = Method("Eval.Dequeue", EvalDequeueRequest, EvalDequeueReply)
EVAL_ACK = Method("Eval.Ack", EvalAckRequest, EvalAckReply)
EVAL_NACK = Method("Eval.Nack", EvalAckRequest, EvalAckReply)
PLAN_SUBMIT = Method("Plan.Submit", PlanSubmitRequest, PlanSubmitReply)
