"""Scheduling workers: dequeue an evaluation, schedule it on a local snapshot, submit plans.

A :class:`Worker` runs against a :class:`WorkerBackend`: on the leader that is the
:class:`~nomadd.server.scheduling_service.SchedulingService` (its eval broker and plan applier,
in process); on a follower the :class:`~nomadd.server.follower_workers.FollowerScheduling`
(the leader's broker and applier by RPC: ``Eval.Dequeue``, ``Plan.Submit``, ``Eval.Ack`` /
``Eval.Nack``). Either way the worker waits until the local state has applied the eval (a
snapshot at least as new as its ModifyIndex), runs ``SCHEDULERS[ev.type]`` on that snapshot
with an :class:`_EvalPlanner` as the ``Planner``, and acks (or nacks on error; after the
broker's delivery limit the eval is marked failed). Every call about the eval carries the
token of its delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Protocol

from nomadd.scheduler import SCHEDULERS
from nomadd.scheduler.protocols import State
from nomadd.server.state import store_allocs, store_deployments, store_evals, store_jobs, store_nodes
from nomadd.server.state.store import StateSnapshot, StateStore
from nomadd.structs.alloc import Allocation
from nomadd.structs.deployment import Deployment
from nomadd.structs.eval import EvalStatus, Evaluation
from nomadd.structs.job import Job
from nomadd.structs.node import Node
from nomadd.structs.plan import Plan, PlanResult

logger = logging.getLogger(__name__)

__all__ = [
    "DEQUEUE_TIMEOUT_S",
    "MIN_WORKERS",
    "SnapshotState",
    "Worker",
    "WorkerBackend",
    "failed_eval",
    "fresh_state",
]

DEQUEUE_TIMEOUT_S = 0.5  # how long a worker waits for an eval before checking it should stop
MIN_WORKERS = 32  # workers are coroutines that mostly wait on Raft commits: more than one per
# core keeps the plan applier's entries (plans and eval outcomes) full (Nomad: one per core)
EVAL_PROCESS_TIMEOUT_S = 60.0  # Nomad's eval nack timeout: a stuck eval is redelivered, not lost
SNAPSHOT_WAIT_S = 5.0  # how long a worker waits for local state to reach an eval's index
NODES_TABLE = "nodes"  # state/store_nodes.py's table (structs.Node values)
_STATE_TABLES = (NODES_TABLE, store_jobs.TABLE, store_evals.TABLE, store_allocs.TABLE)


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


class WorkerBackend(Protocol):
    """Where a worker's evals come from and its writes go (the leader's broker and applier)."""

    store: StateStore

    async def dequeue(self, timeout: float) -> tuple[Evaluation, str] | None:
        """The next eval and the token of its delivery, or None after ``timeout``."""

    async def submit(self, ev: Evaluation, token: str, plan: Plan, evals: Sequence[Evaluation]) -> PlanResult:
        """Commit the checked part of ``plan`` together with ``evals`` (eval writes)."""

    async def ack(self, ev: Evaluation, token: str) -> None: ...

    async def nack(self, ev: Evaluation, token: str, why: str) -> None:
        """Redeliver the eval; at the delivery limit the leader marks it failed (``why``)."""


class _EvalPlanner:
    """The ``Planner`` of one evaluation: plans and eval writes go through the backend.

    Evals the scheduler creates (follow-up, blocked) are held and committed in the same entry
    as the next plan or the final eval update, so one eval costs one or two Raft entries.
    """

    def __init__(self, backend: WorkerBackend, ev: Evaluation, token: str) -> None:
        self._backend = backend
        self._ev = ev
        self._token = token
        self._created: list[Evaluation] = []

    async def submit_plan(self, plan: Plan) -> PlanResult:
        created, self._created = self._created, []
        return await self._backend.submit(self._ev, self._token, plan, created)

    async def refresh_state(self, min_index: int) -> State:
        return await fresh_state(self._backend.store, min_index)

    async def update_eval(self, evaluation: Evaluation) -> None:
        await self._write([evaluation])

    async def create_eval(self, evaluation: Evaluation) -> None:
        self._created.append(evaluation)

    async def reblock_eval(self, evaluation: Evaluation) -> None:
        await self._write([evaluation])

    async def _write(self, evals: list[Evaluation]) -> None:
        created, self._created = self._created, []
        await self._backend.submit(self._ev, self._token, Plan(eval_id=""), [*created, *evals])


class Worker:
    def __init__(self, backend: WorkerBackend, name: str) -> None:
        self.backend = backend
        self.name = name
        self.processed = 0

    async def run(self) -> None:
        backend = self.backend
        while True:
            got = await backend.dequeue(DEQUEUE_TIMEOUT_S)
            if got is None:
                continue
            ev, token = got
            try:
                async with asyncio.timeout(EVAL_PROCESS_TIMEOUT_S):  # no task per eval, unlike wait_for
                    await self.process(ev, token)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                logger.warning("eval processing failed worker=%s eval_id=%s err=%r", self.name, ev.id, err)
                with contextlib.suppress(Exception):  # else the broker's nack timeout redelivers it
                    await backend.nack(ev, token, f"eval delivery limit reached: {err!r}")
                continue
            try:
                await backend.ack(ev, token)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # the broker's nack timeout redelivers it
                logger.warning("eval ack failed worker=%s eval_id=%s err=%r", self.name, ev.id, err)
                continue
            self.processed += 1

    async def process(self, ev: Evaluation, token: str) -> None:
        factory = SCHEDULERS.get(ev.type)
        if factory is None:
            await self._fail(ev, token, f"no scheduler for eval type {ev.type!r}")
            return
        state = await fresh_state(self.backend.store, ev.modify_index)
        scheduler = factory(state, _EvalPlanner(self.backend, ev, token))
        await scheduler.process(ev)

    async def _fail(self, ev: Evaluation, token: str, why: str) -> None:
        with contextlib.suppress(Exception):
            await self.backend.submit(ev, token, Plan(eval_id=""), [failed_eval(ev, why)])


def failed_eval(ev: Evaluation, why: str) -> Evaluation:
    return dataclasses.replace(
        ev, status=EvalStatus.FAILED, status_description=why, modify_time=time.time_ns()
    )
