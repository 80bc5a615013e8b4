"""``Eval.*`` RPCs (Nomad's eval_endpoint.go): ``Eval.GetEval`` (by ID, or a unique prefix as in
the CLI), ``Eval.List`` (by prefix) and ``Eval.Allocations`` (the allocations an evaluation
placed). Typed requests and replies: ``structs/requests/eval.py``; the HTTP edge turns them into
Nomad's API JSON. Evaluation writes are Raft entries applied by ``server/fsm/eval.py``.

:class:`EvalBrokerEndpoint` is the leader's eval broker for the followers' workers
(``Eval.Dequeue``, ``Eval.Ack``, ``Eval.Nack``; servers only, see ``nomadd.rpc.auth``): a
dequeued eval is nacked by the broker after ``eval_nack_timeout`` unless acked, so the evals
of a follower that dies are redelivered; ack and nack need the delivery's token.
"""

from __future__ import annotations

from collections.abc import Callable

from nomadd.rpc import RPCRegistry
from nomadd.server.context import ServerContext
from nomadd.server.eval_broker import EvalBroker
from nomadd.server.state import store_allocs, store_evals
from nomadd.server.state.store import StateSnapshot
from nomadd.structs.alloc import AllocListStub
from nomadd.structs.errors import PermissionDeniedError
from nomadd.structs.eval import Evaluation
from nomadd.structs.requests.eval import (
    EVAL_ALLOCATIONS,
    EVAL_GET,
    EVAL_LIST,
    EvalAllocationsReply,
    EvalGetReply,
    EvalListReply,
    EvalListRequest,
    EvalSpecificRequest,
)
from nomadd.structs.requests.scheduling import (
    EVAL_ACK,
    EVAL_DEQUEUE,
    EVAL_NACK,
    DequeuedEval,
    EvalAckReply,
    EvalAckRequest,
    EvalDequeueReply,
    EvalDequeueRequest,
)

__all__ = ["MAX_DEQUEUE_BATCH", "MAX_DEQUEUE_WAIT_S", "EvalBrokerEndpoint", "EvalEndpoint", "find_eval"]

MAX_DEQUEUE_BATCH = 64  # evals per Eval.Dequeue (a follower asks for as many as it has idle workers)
MAX_DEQUEUE_WAIT_S = 5.0  # bounds a follower's wait in Eval.Dequeue (under the RPC timeout)


def find_eval(snap: StateSnapshot, eval_id: str) -> Evaluation | None:
    """By full ID, or by a prefix that matches exactly one evaluation."""
    ev = store_evals.get_eval(snap, eval_id)
    if ev is not None or not eval_id:
        return ev
    matches = store_evals.list_evals(snap, "*", eval_id)
    return matches[0] if len(matches) == 1 else None


class EvalEndpoint:
    def __init__(self, ctx: ServerContext) -> None:
        self._ctx = ctx

    def register(self, registry: RPCRegistry) -> None:
        registry.register(EVAL_GET, self.get_eval, kind="read")
        registry.register(EVAL_LIST, self.list_evals, kind="read")
        registry.register(EVAL_ALLOCATIONS, self.allocations, kind="read")

    async def get_eval(self, req: EvalSpecificRequest) -> EvalGetReply:
        def fn(snap: StateSnapshot) -> tuple[Evaluation | None, tuple[Evaluation, ...]]:
            ev = find_eval(snap, req.eval_id)
            return ev, (related_evals(snap, ev) if ev is not None and req.related else ())

        (ev, related), meta = await self._ctx.blocking.query(req, (store_evals.TABLE,), fn)
        return EvalGetReply(meta=meta, eval=ev, related=related)

    async def list_evals(self, req: EvalListRequest) -> EvalListReply:
        def fn(snap: StateSnapshot) -> tuple[Evaluation, ...]:
            return tuple(store_evals.list_evals(snap, req.namespace, req.prefix))

        evals, meta = await self._ctx.blocking.query(req, (store_evals.TABLE,), fn)
        return EvalListReply(meta=meta, evaluations=evals)

    async def allocations(self, req: EvalSpecificRequest) -> EvalAllocationsReply:
        def fn(snap: StateSnapshot) -> tuple[AllocListStub, ...]:
            ev = find_eval(snap, req.eval_id)
            if ev is None:
                return ()
            allocs = store_allocs.allocs_by_job(snap, ev.namespace, ev.job_id)
            return tuple(a.stub() for a in allocs if a.eval_id == ev.id)

        stubs, meta = await self._ctx.blocking.query(req, (store_allocs.TABLE, store_evals.TABLE), fn)
        return EvalAllocationsReply(meta=meta, allocations=stubs)


def related_evals(snap: StateSnapshot, ev: Evaluation) -> tuple[Evaluation, ...]:
    """The evaluations linked to ``ev`` through next/previous/blocked, followed transitively
    (Nomad's ``relatedEvalsByID``), in creation order, ``ev`` itself left out."""
    seen = {ev.id}
    todo = [ev]
    found: list[Evaluation] = []
    while todo:
        cur = todo.pop()
        for link in (cur.next_eval, cur.previous_eval, cur.blocked_eval):
            if not link or link in seen:
                continue
            seen.add(link)
            other = store_evals.get_eval(snap, link)
            if other is not None:
                found.append(other)
                todo.append(other)
    return tuple(sorted(found, key=lambda e: (e.create_index, e.id)))


class EvalBrokerEndpoint:
    """The leader's broker for followers' workers. ``nack_timeout()``: the configured
    ``eval_nack_timeout``. A nack at the delivery limit is answered in ``failed``: the
    broker's ``on_failed`` marks the eval failed."""

    def __init__(self, broker: EvalBroker, nack_timeout: Callable[[], float]) -> None:
        self._broker = broker
        self._nack_timeout = nack_timeout

    def register(self, registry: RPCRegistry) -> None:
        registry.register(EVAL_DEQUEUE, self.dequeue, kind="write")
        registry.register(EVAL_ACK, self.ack, kind="write")
        registry.register(EVAL_NACK, self.nack, kind="write")

    async def dequeue(self, req: EvalDequeueRequest) -> EvalDequeueReply:
        broker, timeout = self._broker, self._nack_timeout()
        limit = max(1, min(req.max_evals, MAX_DEQUEUE_BATCH))
        first = await broker.dequeue(max(0.0, min(req.timeout_s, MAX_DEQUEUE_WAIT_S)), nack_timeout=timeout)
        if first is None:
            return EvalDequeueReply()
        evals = [first, *broker.dequeue_ready(limit - 1, nack_timeout=timeout)]
        return EvalDequeueReply(
            evals=tuple(DequeuedEval(eval=ev, token=broker.token_of(ev.id) or "") for ev in evals)
        )

    async def ack(self, req: EvalAckRequest) -> EvalAckReply:
        refused: list[str] = []
        for item in req.evals:
            try:
                self._broker.ack(item.eval_id, item.token)
            except PermissionDeniedError:
                refused.append(item.eval_id)
        return EvalAckReply(refused=tuple(refused))

    async def nack(self, req: EvalAckRequest) -> EvalAckReply:
        refused: list[str] = []
        failed: list[str] = []
        for item in req.evals:
            try:
                if not self._broker.nack(item.eval_id, item.token):
                    failed.append(item.eval_id)
            except PermissionDeniedError:
                refused.append(item.eval_id)
        return EvalAckReply(refused=tuple(refused), failed=tuple(failed))
