"""Blocking queries (Nomad's ``blockingRPC``): wait for a table index, then read a snapshot.

``await blocking.query(req, tables, fn)`` waits until one of ``tables`` has an index above the
request's ``min_query_index`` (capped at :data:`MAX_BLOCKING_WAIT_S`, plus up to wait/16 of
jitter so many waiters do not all return at once), then runs ``fn`` on a consistent snapshot and
returns its value with the :class:`QueryMeta` for the reply.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, TypeVar

from nomadd.server.state.store import StateSnapshot, StateStore
from nomadd.structs.requests import Envelope, QueryMeta

if TYPE_CHECKING:
    from nomadd.server.raft import Raft

__all__ = ["MAX_BLOCKING_WAIT_S", "BlockingQueries"]

T = TypeVar("T")

MAX_BLOCKING_WAIT_S = 300.0  # Nomad's MaxBlockingRPCQueryTime


class BlockingQueries:
    def __init__(self, store: StateStore, raft: Raft) -> None:
        self._store = store
        self._raft = raft

    def meta(self, snap: StateSnapshot, tables: Iterable[str]) -> QueryMeta:
        return QueryMeta(
            index=snap.table_index(*tables),
            known_leader=self._raft.known_leader(),
            last_contact_ms=self._raft.last_contact_ms(),
        )

    async def query(
        self,
        req: Envelope,
        tables: Iterable[str],
        fn: Callable[[StateSnapshot], T],
        row: tuple[str, str] | None = None,
    ) -> tuple[T, QueryMeta]:
        """``row`` (table, key): wait for that row only (``fn`` reads nothing else of ``tables``
        that could change without it), not for any write of ``tables``."""
        names = list(tables)
        if req.min_query_index > 0:
            wait = req.max_query_time_s if req.max_query_time_s > 0 else MAX_BLOCKING_WAIT_S
            wait = min(wait, MAX_BLOCKING_WAIT_S)
            wait += random.uniform(0, wait / 16)
            await self._store.wait_for(names, req.min_query_index, wait, row)
        snap = self._store.snapshot()
        return fn(snap), self.meta(snap, names)
