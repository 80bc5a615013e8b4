"""Group commit: writes that arrive while one is in Raft share the next entry.

Each Raft entry costs every server a fixed amount of Python (pysyncobj pickles, compresses and
encrypts one message per follower, and each side answers and applies it), so under load many
small entries cost more than the writes in them. :class:`GroupCommit` keeps one entry in flight:
a write that finds none goes out at once as a plain ``single_type`` entry (no delay, the same
entry as without batching); writes that arrive meanwhile wait for it and then go out together
as one ``batch_type`` entry ``{"Requests": [...]}``, whose FSM case applies them in order and
returns one result per request (``results_of``).

This server's FSM applies each request as given instead of decoding the entry (``Raft.apply``'s
``request``), so requests follow :meth:`nomadd.server.fsm.FSM.expect`'s rule. A request may come
with a ``local`` twin for that: the same map with structs in place of some of their wire maps;
the entry itself carries ``request``.

Two requests with the same ``key`` never share an entry (a later one waits for the next), so a
batch never holds two writes of the same object at the same Raft index.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Any

from nomadd.server.fsm import encode_payload

if TYPE_CHECKING:
    from nomadd.server.raft import Raft

__all__ = ["MAX_REQUESTS_PER_ENTRY", "GroupCommit"]

MAX_REQUESTS_PER_ENTRY = 256


@dataclasses.dataclass(slots=True)
class _Waiting:
    key: Hashable
    request: dict[str, Any]
    local: dict[str, Any]
    future: asyncio.Future[tuple[object, int]]


class GroupCommit:
    """``await commit.apply(key, request) -> (result, index)`` like ``Raft.apply`` for one request."""

    def __init__(
        self,
        raft: Raft,
        single_type: int,
        batch_type: int,
        results_of: Callable[[object], Sequence[object]],
        *,
        max_requests: int = MAX_REQUESTS_PER_ENTRY,
    ) -> None:
        self._raft = raft
        self._single_type = single_type
        self._batch_type = batch_type
        self._results_of = results_of
        self._max = max_requests
        self._waiting: list[_Waiting] = []
        self._flusher: asyncio.Task[None] | None = None
        self.entries = 0  # entries proposed (tests and benchmarks)

    async def apply(
        self, key: Hashable, request: dict[str, Any], local: dict[str, Any] | None = None
    ) -> tuple[object, int]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[tuple[object, int]] = loop.create_future()
        self._waiting.append(_Waiting(key, request, request if local is None else local, fut))
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush(), name="group-commit")
        return await fut

    def _take(self) -> list[_Waiting]:
        batch: list[_Waiting] = []
        rest: list[_Waiting] = []
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
                    result, index = await self._raft.apply(
                        self._single_type, encode_payload(batch[0].request), request=batch[0].local
                    )
                    results: Sequence[object] = [result]
                else:
                    payload = encode_payload({"Requests": [w.request for w in batch]})
                    local = {"Requests": [w.local for w in batch]}
                    result, index = await self._raft.apply(self._batch_type, payload, request=local)
                    results = self._results_of(result)
            except Exception as err:
                for w in batch:
                    if not w.future.done():
                        w.future.set_exception(err)
                continue
            for w, res in zip(batch, results, strict=True):
                if not w.future.done():
                    w.future.set_result((res, index))
