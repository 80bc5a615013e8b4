"""``Alloc.*`` RPCs and the two allocation RPCs clients use (Nomad's alloc_endpoint.go and the
alloc half of node_endpoint.go).

For the client agent (all over the internal RPC, ``POST /v1/internal/<Method>``, msgpack)::

    Node.GetClientAllocs   kind=read (blocking; forwarded to the leader unless AllowStale)
      args  {"NodeID": str, "SecretID": str, "MinQueryIndex": int, "MaxQueryTime": float s,
             "AllowStale": bool}
      reply {"Allocs": {alloc_id: AllocModifyIndex}, "Index": int, "KnownLeader": bool,
             "LastContact": int}
      Every allocation the servers placed on the node, terminal ones included (the client stops
      what is server-terminal and forgets what is gone). Blocks while the ``allocs`` table index
      is <= MinQueryIndex. A wrong SecretID -> PermissionDeniedError (403); unknown node -> 404.
      Fetch the ones whose AllocModifyIndex moved with Alloc.GetAllocs.

    Alloc.GetAllocs        kind=read   (typed: ``AllocsGetRequest`` -> ``AllocsGetReply``)
      The allocations asked for, each with the job it runs; unknown IDs are left out.

    Node.UpdateAlloc       kind=write
      args  {"NodeID": str, "SecretID": str (optional),
             "Alloc": [{"id": str, "client_status": "pending|running|complete|failed|lost",
                        "client_description": str,
                        "task_states": {task: to_wire(TaskState)}}, ...]}
      reply {"Index": int}   (the Raft index the batch was committed at)
      Updates from all clients are batched for ``UPDATE_BATCH_S`` into one ALLOC_CLIENT_UPDATE
      entry (Nomad batches 50 ms). A ``failed`` allocation of a job that wants it running gets a
      ``alloc-failure`` evaluation in the same entry so it is rescheduled per its policy. Extra
      keys in an update map are ignored (sending a whole ``to_wire(alloc)`` works).

:class:`AllocEndpoint` (typed, ``structs/requests/alloc.py``): ``Alloc.GetAllocs`` (above),
``Alloc.GetAlloc`` (by ID or a unique prefix), ``Alloc.List`` (stubs) and ``Alloc.Stop``, which
marks the allocation for migration and creates an ``alloc-stop`` evaluation in one
``ALLOC_UPDATE`` entry: the scheduler stops it and places a replacement. The HTTP edge turns the
structs into Nomad's API JSON.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from nomadd.server.context import ServerContext
from nomadd.server.fsm import encode_payload
from nomadd.server.state import store_allocs, store_evals, store_jobs, store_nodes
from nomadd.server.state.store import StateSnapshot, Txn
from nomadd.server.state.store_evals import ApplyResult
from nomadd.structs.alloc import (
    Allocation,
    AllocClientStatus,
    AllocDesiredStatus,
    AllocListStub,
    DesiredTransition,
)
from nomadd.structs.codec import from_wire, to_wire
from nomadd.structs.errors import PermissionDeniedError, UnknownAllocError, UnknownNodeError, ValidationError
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

if TYPE_CHECKING:
    from nomadd.rpc import RPCRegistry
    from nomadd.server.server import Server

logger = logging.getLogger(__name__)

__all__ = ["NODES_TABLE", "UPDATE_BATCH_S", "AllocEndpoint", "find_alloc", "new_eval", "register"]

UPDATE_BATCH_S = 0.05  # Nomad's batchUpdateInterval: client updates share one Raft entry
NODES_TABLE = store_nodes.TABLE
_CLIENT_STATUSES = frozenset(str(s) for s in AllocClientStatus)


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


# ---- FSM ---------------------------------------------------------------------------------


def _apply_client_update(txn: Txn, req: dict[str, Any]) -> object:
    updated = store_allocs.update_client_locked(txn, req.get("Allocs") or (), int(req.get("Time", 0)))
    evals = store_evals.upsert_evals_locked(txn, (from_wire(Evaluation, e) for e in req.get("Evals") or ()))
    freed = any(a.client_terminal() for a in updated)
    return ApplyResult(evals=tuple(evals), freed=freed, placed=0, stopped=0)


# ---- batching of client updates -----------------------------------------------------------


class _UpdateBatcher:
    """Collects ``Node.UpdateAlloc`` calls for ``UPDATE_BATCH_S`` and commits them as one entry."""

    def __init__(self, server: Server) -> None:
        self._server = server
        self._updates: list[dict[str, Any]] = []
        self._waiters: list[asyncio.Future[int]] = []
        self._handle: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, updates: list[dict[str, Any]]) -> int:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[int] = loop.create_future()
        self._updates.extend(updates)
        self._waiters.append(fut)
        if self._handle is None:
            self._handle = loop.call_later(UPDATE_BATCH_S, self._flush)
        return await fut

    def _flush(self) -> None:
        self._handle = None
        updates, self._updates = self._updates, []
        waiters, self._waiters = self._waiters, []
        task = asyncio.get_running_loop().create_task(
            self._commit(updates, waiters), name="alloc-update-batch"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _commit(self, updates: list[dict[str, Any]], waiters: list[asyncio.Future[int]]) -> None:
        try:
            now = time.time_ns()
            evals = self._failure_evals(updates, now)
            payload = {"Allocs": updates, "Evals": [to_wire(e) for e in evals], "Time": now}
            _, index = await self._server.raft.apply(MessageType.ALLOC_CLIENT_UPDATE, encode_payload(payload))
        except Exception as err:
            for w in waiters:
                if not w.done():
                    w.set_exception(err)
            return
        for w in waiters:
            if not w.done():
                w.set_result(index)

    def _failure_evals(self, updates: list[dict[str, Any]], now: int) -> list[Evaluation]:
        """One ``alloc-failure`` eval per job with a newly failed allocation (Nomad's UpdateAlloc)."""
        snap = self._server.store.snapshot()
        seen: set[tuple[str, str]] = set()
        out = []
        for upd in updates:
            if upd.get("client_status") != AllocClientStatus.FAILED:
                continue
            alloc = store_allocs.get_alloc(snap, str(upd.get("id", "")))
            if alloc is None or alloc.desired_status != AllocDesiredStatus.RUN or alloc.client_terminal():
                continue
            job = store_jobs.get_job(snap, alloc.namespace, alloc.job_id)
            key = (alloc.namespace, alloc.job_id)
            if job is None or job.stop or key in seen:
                continue
            seen.add(key)
            out.append(
                new_eval(
                    job_id=job.id,
                    namespace=job.namespace,
                    job_type=str(job.type),
                    priority=job.priority,
                    trigger=EvalTrigger.ALLOC_FAILURE,
                    now_ns=now,
                    job_modify_index=job.job_modify_index,
                )
            )
        return out


def _check_node(snap: StateSnapshot, node_id: str, secret_id: str | None) -> None:
    node = store_nodes.get(snap, node_id)
    if node is None:
        raise UnknownNodeError(f"node not found: {node_id}")
    if secret_id is not None and node.secret_id and node.secret_id != secret_id:
        raise PermissionDeniedError("Permission denied")


def _clean_update(raw: object) -> dict[str, Any]:
    if not isinstance(raw, Mapping) or not raw.get("id"):
        raise ValidationError("Alloc update: missing id")
    status = raw.get("client_status") or ""
    if status and status not in _CLIENT_STATUSES:
        raise ValidationError(f"Alloc update: invalid client_status {status!r}")
    out: dict[str, Any] = {"id": str(raw["id"]), "client_status": status}
    out["client_description"] = str(raw.get("client_description") or "")
    if isinstance(raw.get("task_states"), Mapping):
        out["task_states"] = dict(raw["task_states"])
    return out


def register(server: Server, registry: RPCRegistry) -> None:
    batcher = _UpdateBatcher(server)
    tables = store_allocs.TABLES

    async def get_client_allocs(args: dict[str, Any]) -> dict[str, Any]:
        node_id = str(args.get("NodeID") or "")
        if not node_id:
            raise ValidationError("missing node ID")
        _check_node(server.store.snapshot(), node_id, str(args.get("SecretID") or ""))

        def fn(snap: StateSnapshot) -> Any:
            return {a.id: a.alloc_modify_index for a in store_allocs.allocs_by_node(snap, node_id)}

        reply = await server.blocking_query(args, tables, fn)
        reply["Allocs"] = reply.pop("Value")
        return reply

    async def update_alloc(args: dict[str, Any]) -> dict[str, Any]:
        updates = [_clean_update(u) for u in args.get("Alloc") or ()]
        node_id = str(args.get("NodeID") or "")
        if node_id:
            snap = server.store.snapshot()
            _check_node(snap, node_id, args.get("SecretID"))
            for u in updates:
                alloc = store_allocs.get_alloc(snap, u["id"])
                if alloc is not None and alloc.node_id != node_id:
                    raise PermissionDeniedError(f"allocation {u['id']} is not on node {node_id}")
        if not updates:
            return {"Index": server.store.latest_index()}
        index = await batcher.submit(updates)
        return {"Index": index}

    registry.register_legacy("Node.GetClientAllocs", get_client_allocs, kind="read")
    registry.register_legacy("Node.UpdateAlloc", update_alloc, kind="write")


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
        def fn(snap: StateSnapshot) -> tuple[AllocListStub, ...]:
            if req.node_id:
                found = sorted(
                    store_allocs.allocs_by_node(snap, req.node_id), key=lambda a: (a.create_index, a.id)
                )
                allocs = [a for a in found if req.namespace in ("*", a.namespace)]
            else:
                allocs = store_allocs.list_allocs(snap, req.namespace, req.prefix)
            return tuple(a.stub() for a in allocs)

        stubs, meta = await self._ctx.blocking.query(req, store_allocs.TABLES, fn)
        return AllocListReply(meta=meta, allocations=stubs)

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
