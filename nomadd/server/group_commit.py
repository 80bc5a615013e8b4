"""Group commit: writes that arrive while one is in Raft share the next entry.

Each Raft entry costs every server a fixed amount of Python (pysyncobj pickles, compresses and
encrypts one message per follower, and each side answers and applies it), so under load many
small entries cost more than the writes in them. :class:`GroupCommit` keeps one entry in flight:
a write that finds none goes out at once as a plain ``single_type`` entry (no delay, the same
entry as without batching); writes that arrive meanwhile wait for it and then go out together
as one ``batch_type`` entry (``make_batch(entries)``), whose FSM case applies them in order and
returns one result per entry (``results_of``).

Entries are proposed through :meth:`ServerContext.propose`, so this server's FSM applies the
entry structs themselves and the others decode the same structs from the payload.

Two entries with the same ``key`` never share an entry (a later one waits for the next), so a
batch never holds two writes of the same object at the same Raft index.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Generic, TypeVar

from nomadd.helper.supervisor import Supervisor

if TYPE_CHECKING:
    from nomadd.server.context import ServerContext

__all__ = ["MAX_REQUESTS_PER_ENTRY", "GroupCommit"]

MAX_REQUESTS_PER_ENTRY = 256

E = TypeVar("E")


@dataclasses.dataclass(slots=True)
class _Waiting(Generic[E]):
    key: Hashable
    entry: E
    future: asyncio.Future[tuple[object, int]]


class GroupCommit(Generic[E]):
    """``await commit.apply(key, entry) -> (result, index)`` like ``ServerContext.propose`` for one entry."""

    def __init__(
        self,
        ctx: ServerContext,
        single_type: int,
        batch_type: int,
        make_batch: Callable[[tuple[E, ...]], object],
        results_of: Callable[[object], Sequence[object]],
        *,
        max_requests: int = MAX_REQUESTS_PER_ENTRY,
    ) -> None:
        self._ctx = ctx
        self._single_type = single_type
        self._batch_type = batch_type
        self._make_batch = make_batch
        self._results_of = results_of
        self._max = max_requests
        self._waiting: list[_Waiting[E]] = []
        self._tasks = Supervisor("group-commit")
        self._flusher: asyncio.Task[None] | None = None
        self.entries = 0  # entries proposed (tests and benchmarks)

    async def apply(self, key: Hashable, entry: E) -> tuple[object, int]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[tuple[object, int]] = loop.create_future()
        self._waiting.append(_Waiting(key, entry, fut))
        if self._flusher is None or self._flusher.done():
            self._flusher = self._tasks.spawn(self._flush(), "group-commit")
        return await fut

    def _take(self) -> list[_Waiting[E]]:
        batch: list[_Waiting[E]] = []
        rest: list[_Waiting[E]] = []
        keys: set[Hashable] = set()
        for w in self._waiting:
            if w.future.done():  # its caller gave up (cancelled): nothing to write
                continue
            if len(batch) >= self._max or w.key in keys:
                rest.append(w)
            else:
                keys.add(w.key)
                batch.append(w)
        self._waiting = rest
        return batch

    async def _flush(self) -> None:
        while self._waiting:
            batch = self._take()
            if not batch:
                continue
            self.entries += 1
            try:
                if len(batch) == 1:
                    result, index = await self._ctx.propose(self._single_type, batch[0].entry)
                    results: Sequence[object] = [result]
                else:
                    entry = self._make_batch(tuple(w.entry for w in batch))
                    result, index = await self._ctx.propose(self._batch_type, entry)
                    results = self._results_of(result)
            except Exception as err:
                for w in batch:
                    if not w.future.done():
                        w.future.set_exception(err)
                continue
            for w, res in zip(batch, results, strict=True):
                if not w.future.done():
                    w.future.set_result((res, index))
