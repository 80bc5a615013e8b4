"""``Eval.*`` RPC requests and replies, and the evaluation entries of the Raft log."""

from __future__ import annotations

from dataclasses import dataclass

from nomadd.structs.alloc import AllocListStub
from nomadd.structs.eval import Evaluation
from nomadd.structs.requests import Envelope, Method, QueryMeta

__all__ = [
    "EVAL_ALLOCATIONS",
    "EVAL_GET",
    "EVAL_LIST",
    "EvalAllocationsReply",
    "EvalDeleteEntry",
    "EvalDeleteResult",
    "EvalGetReply",
    "EvalListReply",
    "EvalListRequest",
    "EvalSpecificRequest",
    "EvalUpdateEntry",
    "JobRef",
]


# ---- requests ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class EvalSpecificRequest(Envelope):
    """One evaluation by ID, or by a prefix that matches exactly one (as the CLI allows)."""

    eval_id: str
    related: bool = False  # Eval.GetEval: also the evaluations linked to it (?related=true)


@dataclass(frozen=True, slots=True, kw_only=True)
class EvalListRequest(Envelope):
    prefix: str = ""


# ---- replies -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class EvalGetReply:
    meta: QueryMeta
    eval: Evaluation | None = None
    related: tuple[Evaluation, ...] = ()  # next/previous/blocked links, transitively (when asked)


@dataclass(frozen=True, slots=True, kw_only=True)
class EvalListReply:
    meta: QueryMeta
    evaluations: tuple[Evaluation, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class EvalAllocationsReply:
    """The allocations the evaluation placed (empty when it does not exist)."""

    meta: QueryMeta
    allocations: tuple[AllocListStub, ...] = ()


# ---- Raft entries --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class EvalUpdateEntry:
    """``EVAL_UPDATE``: insert or replace evaluations."""

    evals: tuple[Evaluation, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class JobRef:
    namespace: str
    job_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class EvalDeleteEntry:
    """``EVAL_DELETE`` (GC): evaluations, allocations, purged jobs and terminal deployments to
    remove, in one entry."""

    evals: tuple[str, ...] = ()
    allocs: tuple[str, ...] = ()
    jobs: tuple[JobRef, ...] = ()
    deployments: tuple[str, ...] = ()

    def empty(self) -> bool:
        return not (self.evals or self.allocs or self.jobs or self.deployments)


@dataclass(frozen=True, slots=True, kw_only=True)
class EvalDeleteResult:
    """How many of the entry's evaluations and allocations existed."""

    evals: int = 0
    allocs: int = 0


# ---- methods -------------------------------------------------------------------------------

EVAL_GET = Method("Eval.GetEval", EvalSpecificRequest, EvalGetReply)
EVAL_LIST = Method("Eval.List", EvalListRequest, EvalListReply)
EVAL_ALLOCATIONS = Method("Eval.Allocations", EvalSpecificRequest, EvalAllocationsReply)
