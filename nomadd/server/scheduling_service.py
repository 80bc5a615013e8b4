"""The leader's scheduling service: eval broker, blocked evals, plan applier, workers.

:class:`SchedulingService` is the leader component (``set_enabled``) registered by the server.
When enabled it restores the eval broker and blocked evals from state (pending evals re-enqueued,
blocked ones tracked), starts the plan applier and the leader's :class:`Worker` tasks
(``leader_schedulers``; default ``max(num_schedulers, MIN_WORKERS)``).
An FSM applied listener (Raft thread → ``call_soon_threadsafe``) feeds newly committed evals to
the broker or the blocked tracker and releases blocked evals when capacity may have appeared;
node changes go to :class:`nomadd.server.node_evals.NodeEvals`.

It is its own workers' :class:`~nomadd.server.worker.WorkerBackend` (broker and applier in
process) and serves the followers' workers (``Eval.Dequeue``/``Ack``/``Nack``,
``Plan.Submit``, registered on every server, answered by the leader). The followers' own
workers (``follower_schedulers`` on each server, off by default) are
:class:`~nomadd.server.follower_workers.FollowerScheduling`, started with the server.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from nomadd.helper.supervisor import Supervisor
from nomadd.rpc import RPCRegistry
from nomadd.server.blocked_evals import BlockedEvals
from nomadd.server.eval_broker import DELIVERY_LIMIT, EvalBroker
from nomadd.server.eval_endpoint import EvalBrokerEndpoint
from nomadd.server.follower_workers import FollowerScheduling
from nomadd.server.handoff import LoopHandoff
from nomadd.server.node_evals import NodeEvals
from nomadd.server.plan_apply import PlanApplier
from nomadd.server.plan_endpoint import PlanEndpoint
from nomadd.server.state import store_evals
from nomadd.server.state.store import StateStore
from nomadd.server.state.store_evals import ApplyResult
from nomadd.server.worker import DEQUEUE_TIMEOUT_S, MIN_WORKERS, Worker, failed_eval
from nomadd.structs.eval import EvalStatus, Evaluation
from nomadd.structs.messages import MessageType
from nomadd.structs.plan import Plan, PlanResult

if TYPE_CHECKING:
    from nomadd.server.context import ServerContext

logger = logging.getLogger(__name__)

__all__ = ["DEQUEUE_TIMEOUT_S", "SchedulingService"]

_NODE_MESSAGES = frozenset(range(MessageType.NODE_REGISTER, MessageType.NODE_UPDATE_ELIGIBILITY + 1))


def _written_nodes(result: object) -> list[str] | None:
    """The node IDs a node entry wrote (a ``store_nodes.NodeWriteResult``), None if unknown."""
    node = getattr(result, "node", None)
    deleted = getattr(result, "deleted", None)
    if node is None and deleted is None:
        return None
    return [*([node.id] if node is not None else []), *(deleted or ())]


class SchedulingService:
    """Leader component: broker + blocked evals + plan applier + workers + node evals."""

    def __init__(self, ctx: ServerContext, tasks: Supervisor, registry: RPCRegistry | None = None) -> None:
        self.store: StateStore = ctx.store
        cfg = ctx.config
        leader = cfg.leader_schedulers
        self.num_workers = max(MIN_WORKERS, int(cfg.num_schedulers or 1)) if leader is None else leader
        self.broker = EvalBroker(on_cancel=self._cancel_evals, on_failed=self._eval_failed)
        self.blocked = BlockedEvals(self.broker.enqueue, on_cancel=self._cancel_evals)
        self.applier = PlanApplier(ctx, tasks=tasks.child("plan-applier"))
        self.node_evals = NodeEvals(self.store, self.write_evals)
        self.workers: list[Worker] = []
        self._tasks = tasks.child("scheduling")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._applied: LoopHandoff[tuple[int, int, object]] = LoopHandoff(self._drain_applied)
        self.enabled = False
        ctx.fsm.add_listener(self._on_applied_thread)
        self.followers = FollowerScheduling(
            ctx, tasks.child("follower-scheduling"), leading=lambda: self.enabled
        )
        if registry is not None:
            EvalBrokerEndpoint(self.broker, lambda: cfg.eval_nack_timeout).register(registry)
            PlanEndpoint(self.store, self.broker, self.applier).register(registry)

    # ---- leadership ---------------------------------------------------------------------
    def set_enabled(self, enabled: bool) -> None:
        if enabled == self.enabled:
            return
        self.enabled = enabled
        if enabled:
            self._loop = asyncio.get_running_loop()
            self._applied.loop = self._loop
            self.broker.set_enabled(True)
            self.blocked.set_enabled(True)
            self.applier.set_enabled(True)
            restored = self._restore()
            self.node_evals.set_enabled(True)
            self.workers = [Worker(self, f"worker-{i}") for i in range(self.num_workers)]
            for w in self.workers:
                # Vital: a worker loop only ends on a bug; a leader whose workers are gone accepts
                # jobs and never schedules them.
                self._tasks.spawn(w.run(), w.name, vital=True)
            logger.info("scheduling enabled workers=%d restored_evals=%d", len(self.workers), restored)
        else:
            self._tasks.cancel_all()
            self.node_evals.set_enabled(False)
            self.applier.set_enabled(False)
            self.blocked.set_enabled(False)
            self.broker.set_enabled(False)
            self.workers = []
            logger.info("scheduling disabled")

    def start(self) -> None:
        """Start this server's follower workers (they idle while it leads)."""
        self.followers.start()

    async def shutdown(self) -> None:
        self.set_enabled(False)
        await self._tasks.aclose()
        await self.followers.shutdown()

    # ---- the leader's workers' backend (worker.WorkerBackend) -----------------------------
    async def dequeue(self, timeout: float) -> tuple[Evaluation, str] | None:
        ev = await self.broker.dequeue(timeout)
        return None if ev is None else (ev, "")

    async def submit(self, ev: Evaluation, token: str, plan: Plan, evals: Sequence[Evaluation]) -> PlanResult:
        return await self.applier.submit(plan, evals)

    async def ack(self, ev: Evaluation, token: str) -> None:
        self.broker.ack(ev.id)

    async def nack(self, ev: Evaluation, token: str, why: str) -> None:
        self.broker.nack(ev.id)  # at the delivery limit: _eval_failed

    def _eval_failed(self, ev: Evaluation) -> None:
        """The broker dropped ``ev`` at its delivery limit: mark it failed (Nomad's leader
        reaps its failed queue the same way)."""
        failed = failed_eval(ev, f"eval delivery limit reached ({DELIVERY_LIMIT} deliveries)")
        self._tasks.spawn(self._write_quietly([failed]), "eval-failed")

    def _restore(self) -> int:
        snap = self.store.snapshot()
        n = 0
        for ev in store_evals.list_evals(snap):
            if ev.status == EvalStatus.PENDING:
                self.broker.enqueue(ev)
                n += 1
            elif ev.status == EvalStatus.BLOCKED:
                self.blocked.block(ev)
                n += 1
        return n

    # ---- committed entries ----------------------------------------------------------------
    def _on_applied_thread(self, index: int, msg_type: int, result: object) -> None:
        if not self.enabled or not (isinstance(result, ApplyResult) or msg_type in _NODE_MESSAGES):
            return
        self._applied.post((index, msg_type, result))  # one loop wake-up per burst of entries

    def _drain_applied(self, applied: list[tuple[int, int, object]]) -> None:
        for index, msg_type, result in applied:
            self._on_applied(index, msg_type, result)

    def _on_applied(self, index: int, msg_type: int, result: object) -> None:
        if not self.enabled:
            return
        if isinstance(result, ApplyResult):
            for ev in result.evals:
                if ev.status == EvalStatus.PENDING:
                    self.broker.enqueue(ev)
                elif ev.status == EvalStatus.BLOCKED:
                    self.blocked.block(ev)
            if result.freed:
                self.blocked.unblock(index)
        if msg_type in _NODE_MESSAGES and self.node_evals.on_nodes_changed(index, _written_nodes(result)):
            self.blocked.unblock(index)

    # ---- writes ------------------------------------------------------------------------------
    async def write_evals(self, evals: Sequence[Evaluation]) -> int:
        """Commit eval updates through the plan applier's queue: they share its entries with
        the plans around them (one Raft entry for many workers' plans and outcomes), in the
        order they were submitted. Returns the entry's index."""
        if not evals:
            return 0
        result = await self.applier.submit(Plan(eval_id=""), evals)
        return result.alloc_index

    def _cancel_evals(self, evals: list[Evaluation]) -> None:
        now = time.time_ns()
        canceled = [
            dataclasses.replace(
                e,
                status=EvalStatus.CANCELED,
                status_description="canceled after more recent eval was processed",
                modify_time=now,
            )
            for e in evals
        ]
        self._tasks.spawn(self._write_quietly(canceled), "eval-cancel")

    async def _write_quietly(self, evals: list[Evaluation]) -> None:
        try:
            await self.write_evals(evals)
        except Exception as err:
            logger.debug("eval cancel write failed count=%d err=%r", len(evals), err)

    def stats(self) -> dict[str, object]:
        return {
            "broker": dict(self.broker.stats),
            "ready": self.broker.ready_count(),
            "unacked": self.broker.unacked_count(),
            "blocked": self.blocked.count(),
            "placements": self.applier.committed_placements,
            "workers": len(self.workers),
        }
