"""Scheduling workers on a follower (Nomad runs workers on every server; the leader applies).

:class:`FollowerScheduling` is the :class:`~nomadd.server.worker.WorkerBackend` of a
follower's ``follower_schedulers`` workers (0, the default: none). While this server does not
lead, one fetch loop asks the leader's broker for as many evals as it has idle workers
(``Eval.Dequeue``, one round trip for a batch); a worker schedules its eval on the local state
once that has applied the eval's index, and its plans and eval writes go to the leader's plan
applier by ``Plan.Submit``, its ack by ``Eval.Ack``. Calls made while one of the same kind is
in flight are sent together in the next (``_Coalescer``), so the RPC cost per eval falls as
the load rises. Every call goes through the server's dispatcher, which forwards it to the
current leader: a worker keeps working against a new leader (calls about evals the old
leader delivered are refused by the new one, whose broker redelivers them from state). While
this server leads, its follower workers idle (its own leader workers schedule).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Generic, TypeVar

from nomadd import telemetry
from nomadd.helper.supervisor import Supervisor
from nomadd.rpc.auth import server_caller
from nomadd.server.plan_endpoint import encode_plan_allocs
from nomadd.server.worker import Worker
from nomadd.structs.codec_diff import fast_replace
from nomadd.structs.errors import NomaddError, PermissionDeniedError, RPCError
from nomadd.structs.eval import Evaluation
from nomadd.structs.plan import Plan, PlanResult
from nomadd.structs.requests.scheduling import (
    EVAL_ACK,
    EVAL_DEQUEUE,
    EVAL_NACK,
    PLAN_SUBMIT,
    EvalAckRequest,
    EvalDequeueRequest,
    EvalToken,
    PlanOutcome,
    PlanSubmitItem,
    PlanSubmitRequest,
)

if TYPE_CHECKING:
    from nomadd.server.context import ServerContext

logger = logging.getLogger(__name__)

__all__ = ["FOLLOWER_PLACEMENTS_METRIC", "FollowerScheduling"]

DEQUEUE_WAIT_S = 0.5  # the leader holds an empty Eval.Dequeue this long (then we ask again)
RETRY_S = 0.5  # after a failed Eval.Dequeue (no leader yet, leader changing)
LEADING_POLL_S = 0.5  # how often idle follower workers check that this server still leads
MAX_INFLIGHT_CALLS = 2  # per kind of call: later calls wait and go together in one
MAX_BATCH = 64  # items per coalesced call
FOLLOWER_PLACEMENTS_METRIC = "nomad.nomad.worker.follower_placements"  # committed, by this server's workers

T = TypeVar("T")
R = TypeVar("R")


class _Coalescer(Generic[T, R]):
    """``await call(item)`` → its result; items queued while ``MAX_INFLIGHT_CALLS`` calls are
    in flight go together in the next call of ``send`` (one result per item, in order)."""

    def __init__(self, send: Callable[[list[T]], Awaitable[Sequence[R]]], tasks: Supervisor) -> None:
        self._send = send
        self._tasks = tasks
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._inflight = 0

    async def call(self, item: T) -> R:
        fut: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, fut))
        if self._inflight < MAX_INFLIGHT_CALLS:
            self._inflight += 1
            self._tasks.spawn(self._flush(), "coalesced-call")
        return await fut

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                try:
                    results = await self._send([item for item, _ in batch])
                    if len(results) != len(batch):
                        raise RPCError(f"{len(results)} results for {len(batch)} items")
                except Exception as err:
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(err)
                    continue
                for (_, fut), result in zip(batch, results, strict=True):
                    if not fut.done():
                        fut.set_result(result)
        finally:
            self._inflight -= 1


class FollowerScheduling:
    """A follower's workers and their backend (the leader's broker and applier by RPC)."""

    def __init__(self, ctx: ServerContext, tasks: Supervisor, *, leading: Callable[[], bool]) -> None:
        self.store = ctx.store
        self._rpc = ctx.rpc
        self._leading = leading
        self.num_workers = max(0, int(ctx.config.follower_schedulers))
        self._tasks = tasks
        self._queue: asyncio.Queue[tuple[Evaluation, str]] = asyncio.Queue()
        self._idle = 0
        self._wanted = asyncio.Event()
        self._plans: _Coalescer[PlanSubmitItem, PlanOutcome] = _Coalescer(self._send_plans, tasks)
        self._acks: _Coalescer[EvalToken, bool] = _Coalescer(self._send_acks, tasks)
        self.workers: list[Worker] = []
        self.placements = 0  # committed placements of this server's follower workers' plans

    def start(self) -> None:
        if self.num_workers <= 0 or self.workers:
            return
        self.workers = [Worker(self, f"follower-worker-{i}") for i in range(self.num_workers)]
        for w in self.workers:
            self._tasks.spawn(w.run(), w.name, vital=True)  # a worker loop only ends on a bug
        self._tasks.spawn(self._fetch(), "eval-fetch", vital=True)
        logger.info("follower scheduling workers started workers=%d", self.num_workers)

    async def shutdown(self) -> None:
        await self._tasks.aclose()

    # ---- evals -----------------------------------------------------------------------------
    async def _fetch(self) -> None:
        """Keep the idle workers supplied: one ``Eval.Dequeue`` at a time, for as many evals
        as there are idle workers without one."""
        while True:
            if self._leading():
                self._drop_fetched()
                await asyncio.sleep(LEADING_POLL_S)
                continue
            want = self._idle - self._queue.qsize()
            if want <= 0:
                self._wanted.clear()
                await self._wanted.wait()
                continue
            req = EvalDequeueRequest(timeout_s=DEQUEUE_WAIT_S, max_evals=want, caller=server_caller())
            try:
                reply = await self._rpc(EVAL_DEQUEUE, req)
            except NomaddError as err:
                logger.debug("eval dequeue from the leader failed err=%s", err)
                await asyncio.sleep(RETRY_S)
                continue
            for d in reply.evals:
                self._queue.put_nowait((d.eval, d.token))

    def _drop_fetched(self) -> None:
        """This server leads now: evals the old leader delivered are its broker's again."""
        while not self._queue.empty():
            self._queue.get_nowait()

    async def dequeue(self, timeout: float) -> tuple[Evaluation, str] | None:
        self._idle += 1
        self._wanted.set()
        try:
            async with asyncio.timeout(timeout):
                return await self._queue.get()
        except TimeoutError:
            return None
        finally:
            self._idle -= 1

    async def ack(self, ev: Evaluation, token: str) -> None:
        if not await self._acks.call(EvalToken(eval_id=ev.id, token=token)):
            raise PermissionDeniedError(f"eval {ev.id}: ack refused (token no longer outstanding)")

    async def nack(self, ev: Evaluation, token: str, why: str) -> None:
        req = EvalAckRequest(evals=(EvalToken(eval_id=ev.id, token=token),), caller=server_caller())
        reply = await self._rpc(EVAL_NACK, req)
        if reply.failed:
            logger.warning("eval failed at the delivery limit eval_id=%s err=%s", ev.id, why)

    async def _send_acks(self, items: list[EvalToken]) -> list[bool]:
        reply = await self._rpc(EVAL_ACK, EvalAckRequest(evals=tuple(items), caller=server_caller()))
        refused = set(reply.refused)
        return [item.eval_id not in refused for item in items]

    # ---- plans -----------------------------------------------------------------------------
    async def submit(self, ev: Evaluation, token: str, plan: Plan, evals: Sequence[Evaluation]) -> PlanResult:
        job = plan.job
        item = PlanSubmitItem(
            eval_id=ev.id,
            token=token,
            plan=fast_replace(plan, job=None, node_allocation={}, node_update={}),
            allocs=encode_plan_allocs(plan),
            job_namespace=job.namespace if job is not None else "",
            job_id=job.id if job is not None else "",
            job_modify_index=job.job_modify_index if job is not None else 0,
            evals=tuple(evals),
        )
        outcome = await self._plans.call(item)
        if outcome.error:
            raise RPCError(f"plan of eval {ev.id} refused by the leader: {outcome.error}")
        result = outcome.result_of(plan)
        placed = sum(len(v) for v in result.node_allocation.values())
        if placed:
            self.placements += placed
            telemetry.incr_counter(FOLLOWER_PLACEMENTS_METRIC, placed)
        return result

    async def _send_plans(self, items: list[PlanSubmitItem]) -> Sequence[PlanOutcome]:
        reply = await self._rpc(PLAN_SUBMIT, PlanSubmitRequest(items=tuple(items), caller=server_caller()))
        return reply.outcomes
