"""``Alloc.*`` RPCs (Nomad's alloc_endpoint.go). The client agent's ``Node.GetClientAllocs`` and
``Node.UpdateAlloc`` live with the node endpoint (:mod:`nomadd.server.node_endpoint`).

For the client agent (over the internal RPC, ``POST /v1/internal/<Method>``, msgpack)::

    Alloc.GetAllocs        kind=read
      args  {"AllocIDs": [str], "MinQueryIndex": int (optional), "AllowStale": bool}
      reply {"Allocs": [wire Allocation], "Index": int}
      Wire = ``nomadd.structs.codec.to_wire(Allocation)`` (snake_case, msgpack); the job the
      allocation runs is embedded (``alloc["job"]``). Rebuild with ``from_wire(Allocation, d)``.
      Unknown IDs are left out.

API reads (``/v1/allocations``, ``/v1/allocation/:id``) use ``Alloc.List`` / ``Alloc.GetAlloc``
and return Nomad's API JSON. ``Alloc.Stop`` marks the allocation for migration and creates an
``alloc-stop`` evaluation: the scheduler stops it and places a replacement.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

from nomadd.server.fsm import encode_payload
from nomadd.server.state import store_allocs, store_nodes
from nomadd.server.state.store import StateSnapshot
from nomadd.structs.alloc import Allocation, DesiredTransition
from nomadd.structs.codec import to_api, to_wire
from nomadd.structs.errors import UnknownAllocError
from nomadd.structs.eval import EvalStatus, EvalTrigger, Evaluation
from nomadd.structs.messages import MessageType

if TYPE_CHECKING:
    from nomadd.rpc import RPCRegistry
    from nomadd.server.server import Server

logger = logging.getLogger(__name__)

__all__ = ["NODES_TABLE", "alloc_api", "new_eval", "register"]

NODES_TABLE = store_nodes.TABLE


def alloc_api(alloc: Allocation) -> dict[str, Any]:
    """Nomad's full Allocation JSON (with the job it runs)."""
    return to_api(alloc)


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
    return Evaluation(
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


def register(server: Server, registry: RPCRegistry) -> None:
    tables = store_allocs.TABLES

    async def get_allocs(args: dict[str, Any]) -> dict[str, Any]:
        ids = [str(i) for i in args.get("AllocIDs") or ()]

        def fn(snap: StateSnapshot) -> Any:
            found = (store_allocs.get_alloc(snap, i) for i in ids)
            return [to_wire(a) for a in found if a is not None]

        reply = await server.blocking_query(args, tables, fn)
        reply["Allocs"] = reply.pop("Value")
        return reply

    async def get_alloc(args: dict[str, Any]) -> dict[str, Any]:
        alloc_id = str(args.get("AllocID") or "")

        def fn(snap: StateSnapshot) -> Any:
            alloc = store_allocs.get_alloc(snap, alloc_id)
            if alloc is None:
                matches = [a for a in store_allocs.list_allocs(snap, "*", alloc_id)] if alloc_id else []
                alloc = matches[0] if len(matches) == 1 else None
            return alloc_api(alloc) if alloc is not None else None

        return await server.blocking_query(args, tables, fn)

    async def list_allocs(args: dict[str, Any]) -> dict[str, Any]:
        namespace = str(args.get("Namespace") or "default")
        prefix = str(args.get("Prefix") or "")
        node_id = str(args.get("NodeID") or "")

        def fn(snap: StateSnapshot) -> Any:
            if node_id:
                found = sorted(
                    store_allocs.allocs_by_node(snap, node_id), key=lambda a: (a.create_index, a.id)
                )
                allocs = [a for a in found if namespace in ("*", a.namespace)]
            else:
                allocs = store_allocs.list_allocs(snap, namespace, prefix)
            return [to_api(a.stub()) for a in allocs]

        return await server.blocking_query(args, tables, fn)

    async def stop(args: dict[str, Any]) -> dict[str, Any]:
        alloc_id = str(args.get("AllocID") or "")
        snap = server.store.snapshot()
        alloc = store_allocs.get_alloc(snap, alloc_id)
        if alloc is None:
            raise UnknownAllocError(f"alloc not found: {alloc_id}")
        now = time.time_ns()
        job = alloc.job
        ev = new_eval(
            job_id=alloc.job_id,
            namespace=alloc.namespace,
            job_type=alloc.job_type or (str(job.type) if job else "service"),
            priority=job.priority if job else 50,
            trigger=EvalTrigger.ALLOC_STOP,
            now_ns=now,
            job_modify_index=job.job_modify_index if job else 0,
        )
        migrate = dataclasses.replace(
            alloc,
            job=None,
            desired_transition=DesiredTransition(migrate=True),
            modify_time=now,
        )
        payload = {
            "Plans": [{"Job": None, "Allocs": [], "Transitions": [to_wire(migrate)]}],
            "Evals": [to_wire(ev)],
        }
        _, index = await server.raft.apply(MessageType.ALLOC_UPDATE, encode_payload(payload))
        return {"EvalID": ev.id, "Index": index}

    registry.register_legacy("Alloc.GetAllocs", get_allocs, kind="read")
    registry.register_legacy("Alloc.GetAlloc", get_alloc, kind="read")
    registry.register_legacy("Alloc.List", list_allocs, kind="read")
    registry.register_legacy("Alloc.Stop", stop, kind="write")
