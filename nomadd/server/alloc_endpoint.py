"""``Alloc.*`` RPCs (Nomad's alloc_endpoint.go). The client agent's ``Node.GetClientAllocs`` and
``Node.UpdateAlloc`` live with the node endpoint (:mod:`nomadd.server.node_endpoint`).

:class:`AllocEndpoint` (typed, ``structs/requests/alloc.py``): ``Alloc.GetAllocs`` (the client
fetching the allocations its node listing says moved, each with the job it runs; unknown IDs
are left out), ``Alloc.GetAlloc`` (by ID or a unique prefix), ``Alloc.List`` (stubs) and
``Alloc.Stop``, which marks the allocation for migration and creates an ``alloc-stop``
evaluation in one ``ALLOC_UPDATE`` entry: the scheduler stops it and places a replacement. The
HTTP edge turns the structs into Nomad's API JSON.
"""

from __future__ import annotations

import time
import uuid

from nomadd.rpc import RPCRegistry
from nomadd.server.context import ServerContext
from nomadd.server.state import store_allocs, store_nodes
from nomadd.server.state.store import StateSnapshot
from nomadd.structs.alloc import Allocation, DesiredTransition
from nomadd.structs.construct import constructor
from nomadd.structs.errors import UnknownAllocError
from nomadd.structs.eval import EvalStatus, EvalTrigger, Evaluation
from nomadd.structs.messages import MessageType
from nomadd.structs.requests import WriteMeta
from nomadd.structs.requests.alloc import (
    ALLOC_GET,
    ALLOC_GET_ALLOCS,
    ALLOC_LIST,
    ALLOC_STOP,
    AllocGetReply,
    AllocListReply,
    AllocListRequest,
    AllocsGetReply,
    AllocsGetRequest,
    AllocSpecificRequest,
    AllocStopReply,
    AllocTransition,
    AllocUpdateEntry,
)

__all__ = ["NODES_TABLE", "AllocEndpoint", "find_alloc", "new_eval"]

NODES_TABLE = store_nodes.TABLE
_new_evaluation = constructor(Evaluation)


def new_eval(
    *,
    job_id: str,
    namespace: str,
    job_type: str,
    priority: int,
    trigger: EvalTrigger,
    now_ns: int,
    node_id: str = "",
    node_modify_index: int = 0,
    job_modify_index: int = 0,
) -> Evaluation:
    """A pending evaluation with a fresh ID (endpoints make IDs, never the FSM)."""
    return _new_evaluation(  # one per job register: built without the frozen __init__'s setattrs
        id=str(uuid.uuid4()),
        namespace=namespace,
        priority=priority,
        type=job_type,
        triggered_by=trigger,
        job_id=job_id,
        job_modify_index=job_modify_index,
        node_id=node_id,
        node_modify_index=node_modify_index,
        status=EvalStatus.PENDING,
        create_time=now_ns,
        modify_time=now_ns,
    )


# ---- Alloc.* -------------------------------------------------------------------------------


def find_alloc(snap: StateSnapshot, alloc_id: str) -> Allocation | None:
    """By full ID, or by a prefix that matches exactly one allocation."""
    alloc = store_allocs.get_alloc(snap, alloc_id)
    if alloc is not None or not alloc_id:
        return alloc
    matches = store_allocs.list_allocs(snap, "*", alloc_id)
    return matches[0] if len(matches) == 1 else None


class AllocEndpoint:
    def __init__(self, ctx: ServerContext) -> None:
        self._ctx = ctx

    def register(self, registry: RPCRegistry) -> None:
        registry.register(ALLOC_GET_ALLOCS, self.get_allocs, kind="read")
        registry.register(ALLOC_GET, self.get_alloc, kind="read")
        registry.register(ALLOC_LIST, self.list_allocs, kind="read")
        registry.register(ALLOC_STOP, self.stop, kind="write")

    async def get_allocs(self, req: AllocsGetRequest) -> AllocsGetReply:
        def fn(snap: StateSnapshot) -> tuple[Allocation, ...]:
            found = (store_allocs.get_alloc(snap, i) for i in req.alloc_ids)
            return tuple(a for a in found if a is not None)

        allocs, meta = await self._ctx.blocking.query(req, store_allocs.TABLES, fn)
        return AllocsGetReply(meta=meta, allocs=allocs)

    async def get_alloc(self, req: AllocSpecificRequest) -> AllocGetReply:
        alloc, meta = await self._ctx.blocking.query(
            req, store_allocs.TABLES, lambda snap: find_alloc(snap, req.alloc_id)
        )
        return AllocGetReply(meta=meta, alloc=alloc)

    async def list_allocs(self, req: AllocListRequest) -> AllocListReply:
        def fn(snap: StateSnapshot) -> list[Allocation]:
            if req.node_id:
                found = sorted(
                    store_allocs.allocs_by_node(snap, req.node_id), key=lambda a: (a.create_index, a.id)
                )
                return [a for a in found if req.namespace in ("*", a.namespace)]
            return store_allocs.list_allocs(snap, req.namespace, req.prefix)

        allocs, meta = await self._ctx.blocking.query(req, store_allocs.TABLES, fn)
        if req.full:
            return AllocListReply(meta=meta, full=tuple(allocs))
        return AllocListReply(meta=meta, allocations=tuple(a.stub(resources=req.resources) for a in allocs))

    async def stop(self, req: AllocSpecificRequest) -> AllocStopReply:
        alloc = store_allocs.get_alloc(self._ctx.store.snapshot(), req.alloc_id)
        if alloc is None:
            raise UnknownAllocError(f"alloc not found: {req.alloc_id}")
        job = alloc.job
        ev = new_eval(
            job_id=alloc.job_id,
            namespace=alloc.namespace,
            job_type=alloc.job_type or (str(job.type) if job else "service"),
            priority=job.priority if job else 50,
            trigger=EvalTrigger.ALLOC_STOP,
            now_ns=time.time_ns(),
            job_modify_index=job.job_modify_index if job else 0,
        )
        entry = AllocUpdateEntry(
            transitions=(AllocTransition(alloc_id=alloc.id, transition=DesiredTransition(migrate=True)),),
            evals=(ev,),
        )
        _, index = await self._ctx.propose(MessageType.ALLOC_UPDATE, entry)
        return AllocStopReply(meta=WriteMeta(index=index), eval_id=ev.id)
