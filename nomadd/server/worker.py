"""Scheduling workers and the leader-only service that wires broker, workers and plan applier.

:class:`SchedulingService` is the leader component (``set_enabled``) registered by the server.
When enabled it restores the eval broker and blocked evals from state (pending evals re-enqueued,
blocked ones tracked), starts the plan applier and ``num_schedulers`` :class:`Worker` tasks.
An FSM applied listener (Raft thread → ``call_soon_threadsafe``) feeds newly committed evals to
the broker or the blocked tracker and releases blocked evals when capacity may have appeared;
node changes go to :class:`nomadd.server.node_evals.NodeEvals`.

A worker dequeues an eval, waits until the local state has applied it (a snapshot at least as
new as the eval's ModifyIndex), runs ``SCHEDULERS[ev.type]`` on that snapshot with itself as
the ``Planner``, and acks (or nacks on error; after the broker's delivery limit the eval is
marked failed).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from nomadd.helper.supervisor import Supervisor
from nomadd.scheduler import SCHEDULERS
from nomadd.scheduler.protocols import State
from nomadd.server.blocked_evals import BlockedEvals
from nomadd.server.eval_broker import EvalBroker
from nomadd.server.handoff import LoopHandoff
from nomadd.server.node_evals import NodeEvals
from nomadd.server.plan_apply import PlanApplier
from nomadd.server.state import store_allocs, store_deployments, store_evals, store_jobs, store_nodes
from nomadd.server.state.store import StateSnapshot, StateStore
from nomadd.server.state.store_evals import ApplyResult
from nomadd.structs.alloc import Allocation
from nomadd.structs.deployment import Deployment
from nomadd.structs.eval import EvalStatus, Evaluation
from nomadd.structs.job import Job
from nomadd.structs.messages import MessageType
from nomadd.structs.node import Node
from nomadd.structs.plan import Plan, PlanResult

if TYPE_CHECKING:
    from nomadd.server.context import ServerContext

logger = logging.getLogger(__name__)

__all__ = ["DEQUEUE_TIMEOUT_S", "SchedulingService", "SnapshotState", "Worker"]

DEQUEUE_TIMEOUT_S = 0.5  # how long a worker waits for an eval before checking it should stop
MIN_WORKERS = 32  # workers are coroutines that mostly wait on Raft commits: more than one per
# core keeps the plan applier's entries (plans and eval outcomes) full (Nomad: one per core)
EVAL_PROCESS_TIMEOUT_S = 60.0  # Nomad's eval nack timeout: a stuck eval is redelivered, not lost
SNAPSHOT_WAIT_S = 5.0  # how long a worker waits for local state to reach an eval's index
NODES_TABLE = "nodes"  # state/store_nodes.py's table (structs.Node values)
_STATE_TABLES = (NODES_TABLE, store_jobs.TABLE, store_evals.TABLE, store_allocs.TABLE)
_NODE_MESSAGES = frozenset(range(MessageType.NODE_REGISTER, MessageType.NODE_UPDATE_ELIGIBILITY + 1))


def _written_nodes(result: object) -> list[str] | None:
    """The node IDs a node entry wrote (a ``store_nodes.NodeWriteResult``), None if unknown."""
    node = getattr(result, "node", None)
    deleted = getattr(result, "deleted", None)
    if node is None and deleted is None:
        return None
    return [*([node.id] if node is not None else []), *(deleted or ())]


class SnapshotState:
    """The scheduler's ``State`` (and ``NodeUsageIndex``) over a state-store snapshot."""

    def __init__(self, snap: StateSnapshot) -> None:
        self.snap = snap

    def latest_index(self) -> int:
        return self.snap.index

    def nodes(self) -> Sequence[Node]:
        return store_nodes.node_sequence(self.snap)

    def node_by_id(self, node_id: str) -> Node | None:
        node: Node | None = self.snap.get(NODES_TABLE, node_id)
        return node

    def job_by_id(self, namespace: str, job_id: str) -> Job | None:
        return store_jobs.get_job(self.snap, namespace, job_id)

    def allocs_by_job(self, namespace: str, job_id: str) -> Sequence[Allocation]:
        return store_allocs.allocs_by_job(self.snap, namespace, job_id)

    def allocs_by_node(self, node_id: str) -> Sequence[Allocation]:
        return store_allocs.allocs_by_node(self.snap, node_id)

    def latest_deployment(self, namespace: str, job_id: str) -> Deployment | None:
        return store_deployments.latest_by_job(self.snap, namespace, job_id)

    def node_usage(self, node_id: str) -> tuple[int, int, int]:
        """The scheduler's optional ``NodeUsageIndex`` fast path (kept by the allocs table)."""
        return store_allocs.node_usage(self.snap, node_id)

    def node_usage_rows(self) -> Mapping[str, tuple[int, int, int]]:
        """Every node's ``node_usage`` at once: the scheduler reads the rows of the nodes it
        scores directly (one lookup per node instead of a call chain)."""
        return store_allocs.usage_rows(self.snap)


async def fresh_state(store: StateStore, min_index: int) -> SnapshotState:
    """A snapshot whose applied index is at least ``min_index`` (waits up to SNAPSHOT_WAIT_S)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SNAPSHOT_WAIT_S
    while store.latest_index() < min_index and loop.time() < deadline:
        await store.wait_for(_STATE_TABLES, min_index - 1, max(0.01, deadline - loop.time()))
    return SnapshotState(store.snapshot())


class _EvalPlanner:
    """The ``Planner`` of one evaluation: plans go to the applier, eval writes through Raft.

    Evals the scheduler creates (follow-up, blocked) are held and committed in the same entry
    as the next plan or the final eval update, so one eval costs one or two Raft entries.
    """

    def __init__(self, service: SchedulingService) -> None:
        self._service = service
        self._created: list[Evaluation] = []

    async def submit_plan(self, plan: Plan) -> PlanResult:
        created, self._created = self._created, []
        return await self._service.applier.submit(plan, created)

    async def refresh_state(self, min_index: int) -> State:
        return await fresh_state(self._service.store, min_index)

    async def update_eval(self, evaluation: Evaluation) -> None:
        created, self._created = self._created, []
        await self._service.write_evals([*created, evaluation])

    async def create_eval(self, evaluation: Evaluation) -> None:
        self._created.append(evaluation)

    async def reblock_eval(self, evaluation: Evaluation) -> None:
        created, self._created = self._created, []
        await self._service.write_evals([*created, evaluation])


class Worker:
    def __init__(self, service: SchedulingService, n: int) -> None:
        self.service = service
        self.name = f"worker-{n}"
        self.processed = 0

    async def run(self) -> None:
        broker = self.service.broker
        while True:
            ev = await broker.dequeue(DEQUEUE_TIMEOUT_S)
            if ev is None:
                continue
            try:
                async with asyncio.timeout(EVAL_PROCESS_TIMEOUT_S):  # no task per eval, unlike wait_for
                    await self.process(ev)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                logger.warning("eval processing failed worker=%s eval_id=%s err=%r", self.name, ev.id, err)
                if not broker.nack(ev.id):
                    await self._fail(ev, f"eval delivery limit reached: {err!r}")
                continue
            broker.ack(ev.id)
            self.processed += 1

    async def process(self, ev: Evaluation) -> None:
        factory = SCHEDULERS.get(ev.type)
        if factory is None:
            await self._fail(ev, f"no scheduler for eval type {ev.type!r}")
            return
        state = await fresh_state(self.service.store, ev.modify_index)
        scheduler = factory(state, _EvalPlanner(self.service))
        await scheduler.process(ev)

    async def _fail(self, ev: Evaluation, why: str) -> None:
        with contextlib.suppress(Exception):
            failed = dataclasses.replace(
                ev, status=EvalStatus.FAILED, status_description=why, modify_time=time.time_ns()
            )
            await self.service.write_evals([failed])


class SchedulingService:
    """Leader component: broker + blocked evals + plan applier + workers + node evals."""

    def __init__(self, ctx: ServerContext, tasks: Supervisor) -> None:
        self.store: StateStore = ctx.store
        self.num_workers = max(MIN_WORKERS, int(ctx.config.num_schedulers or 1))
        self.broker = EvalBroker(on_cancel=self._cancel_evals)
        self.blocked = BlockedEvals(self.broker.enqueue, on_cancel=self._cancel_evals)
        self.applier = PlanApplier(ctx, tasks=tasks.child("plan-applier"))
        self.node_evals = NodeEvals(self.store, self.write_evals)
        self.workers: list[Worker] = []
        self._tasks = tasks.child("scheduling")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._applied: LoopHandoff[tuple[int, int, object]] = LoopHandoff(self._drain_applied)
        self.enabled = False
        ctx.fsm.add_listener(self._on_applied_thread)

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
            self.workers = [Worker(self, i) for i in range(self.num_workers)]
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

    async def shutdown(self) -> None:
        self.set_enabled(False)
        await self._tasks.aclose()

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
