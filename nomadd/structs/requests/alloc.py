"""``Alloc.*`` RPC requests and replies, and the ``ALLOC_UPDATE`` entry of the Raft log."""

from __future__ import annotations

from dataclasses import dataclass, field

from nomadd.structs.alloc import Allocation, AllocListStub, DesiredTransition
from nomadd.structs.eval import Evaluation
from nomadd.structs.requests import Envelope, Method, QueryMeta, WriteMeta

__all__ = [
    "ALLOC_GET",
    "ALLOC_GET_ALLOCS",
    "ALLOC_LIST",
    "ALLOC_STOP",
    "AllocGetReply",
    "AllocListReply",
    "AllocListRequest",
    "AllocSpecificRequest",
    "AllocStopReply",
    "AllocTransition",
    "AllocUpdateEntry",
    "AllocsGetReply",
    "AllocsGetRequest",
]


# ---- requests ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class AllocSpecificRequest(Envelope):
    """One allocation (``Alloc.GetAlloc``, ``Alloc.Stop``): its ID or a unique prefix of it."""

    alloc_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AllocsGetRequest(Envelope):
    """``Alloc.GetAllocs``: the client fetching the allocations its node listing says moved."""

    alloc_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class AllocListRequest(Envelope):
    """``Alloc.List`` of a namespace (``*``: all) by ID prefix, or of one node."""

    prefix: str = ""
    node_id: str = ""
    resources: bool = False  # stubs carry AllocatedResources (?resources=true)
    full: bool = False  # whole allocations, not stubs (Nomad's Node.GetAllocs for /v1/node/:id/allocations)


# ---- replies -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class AllocsGetReply:
    """The allocations found (unknown IDs are left out), each with the job it runs."""

    meta: QueryMeta
    allocs: tuple[Allocation, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class AllocGetReply:
    meta: QueryMeta
    alloc: Allocation | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AllocListReply:
    meta: QueryMeta
    allocations: tuple[AllocListStub, ...] = ()
    full: tuple[Allocation, ...] = ()  # instead of the stubs when the request asked for ``full``


@dataclass(frozen=True, slots=True, kw_only=True)
class AllocStopReply:
    meta: WriteMeta
    eval_id: str


# ---- Raft entries --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class AllocTransition:
    """Set an allocation's desired transition (``Alloc.Stop``: migrate)."""

    alloc_id: str
    transition: DesiredTransition = field(default_factory=DesiredTransition)


@dataclass(frozen=True, slots=True, kw_only=True)
class AllocUpdateEntry:
    """``ALLOC_UPDATE``: desired transitions and the evaluations that act on them, together."""

    transitions: tuple[AllocTransition, ...] = ()
    evals: tuple[Evaluation, ...] = ()


# ---- methods -------------------------------------------------------------------------------

ALLOC_GET_ALLOCS = Method("Alloc.GetAllocs", AllocsGetRequest, AllocsGetReply)
ALLOC_GET = Method("Alloc.GetAlloc", AllocSpecificRequest, AllocGetReply)
ALLOC_LIST = Method("Alloc.List", AllocListRequest, AllocListReply)
ALLOC_STOP = Method("Alloc.Stop", AllocSpecificRequest, AllocStopReply)
