"""Batching of the clients' allocation reports (``Node.UpdateAlloc``) into ``ALLOC_CLIENT_UPDATE``
entries (Nomad's ``batchUpdateInterval``).

Reports from every client that arrive within ``UPDATE_BATCH_S`` share one Raft entry; each
caller learns the index that entry was committed at. A ``failed`` allocation of a job that still
wants it running gets an ``alloc-failure`` evaluation in the same entry, so it is rescheduled
per its policy (Nomad's ``UpdateAlloc``); so does one the servers had marked ``unknown`` (its node
was disconnected) reporting again (a ``reconnect`` evaluation picks original or replacement).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

from nomadd.helper.supervisor import Supervisor
from nomadd.server.alloc_endpoint import new_eval
from nomadd.server.context import ServerContext
from nomadd.server.state import store_allocs, store_jobs
from nomadd.structs.alloc import AllocClientStatus, AllocDesiredStatus
from nomadd.structs.eval import EvalTrigger, Evaluation
from nomadd.structs.messages import MessageType
from nomadd.structs.requests.node import AllocClientUpdate, AllocClientUpdateEntry

__all__ = ["UPDATE_BATCH_S", "AllocUpdateBatcher"]

UPDATE_BATCH_S = 0.05  # Nomad's batchUpdateInterval: client updates share one Raft entry


class AllocUpdateBatcher:
    """Collects ``Node.UpdateAlloc`` calls for ``UPDATE_BATCH_S`` and commits them as one entry."""

    def __init__(self, ctx: ServerContext) -> None:
        self._ctx = ctx
        self._updates: list[AllocClientUpdate] = []
        self._waiters: list[asyncio.Future[int]] = []
        self._handle: asyncio.TimerHandle | None = None
        self._tasks = Supervisor("alloc-updates")

    async def submit(self, updates: Iterable[AllocClientUpdate]) -> int:
        """Queue ``updates``; returns the index of the entry that committed them."""
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
        self._tasks.spawn(self._commit(tuple(updates), waiters), "alloc-update-batch")

    async def _commit(
        self, updates: tuple[AllocClientUpdate, ...], waiters: list[asyncio.Future[int]]
    ) -> None:
        try:
            now = time.time_ns()
            entry = AllocClientUpdateEntry(
                allocs=updates, evals=self._failure_evals(updates, now), time_ns=now
            )
            _, index = await self._ctx.propose(MessageType.ALLOC_CLIENT_UPDATE, entry)
        except Exception as err:
            for w in waiters:
                if not w.done():
                    w.set_exception(err)
            return
        for w in waiters:
            if not w.done():
                w.set_result(index)

    def _failure_evals(self, updates: Iterable[AllocClientUpdate], now: int) -> tuple[Evaluation, ...]:
        """One ``alloc-failure`` eval per job with a newly failed allocation."""
        snap = self._ctx.store.snapshot()
        seen: set[tuple[str, str]] = set()
        out = []
        for upd in updates:
            if upd.client_status == AllocClientStatus.UNKNOWN:
                continue
            alloc = store_allocs.get_alloc(snap, upd.id)
            if alloc is None or alloc.desired_status != AllocDesiredStatus.RUN or alloc.client_terminal():
                continue
            reconnect = alloc.client_status == AllocClientStatus.UNKNOWN
            if upd.client_status != AllocClientStatus.FAILED and not reconnect:
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
                    trigger=EvalTrigger.RECONNECT if reconnect else EvalTrigger.ALLOC_FAILURE,
                    now_ns=now,
                    job_modify_index=job.job_modify_index,
                )
            )
        return tuple(out)
