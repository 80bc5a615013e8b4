"""Hand items from another thread (pysyncobj's tick thread) to the event loop, in bursts.

Every ``loop.call_soon_threadsafe`` writes the loop's self-pipe and hands the GIL over; under
load, one per Raft entry cost more than the entry. :class:`LoopHandoff` queues items and wakes
the loop only when no wake-up is already pending; the loop then takes the whole burst.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["LoopHandoff"]

T = TypeVar("T")


class LoopHandoff(Generic[T]):
    """``post(item)`` from any thread; ``handle(items)`` runs on ``loop`` with every item
    posted since the previous call, in order."""

    def __init__(self, handle: Callable[[list[T]], None]) -> None:
        self._handle = handle
        self._items: list[T] = []
        self._lock = threading.Lock()
        self._scheduled = False
        self.loop: asyncio.AbstractEventLoop | None = None

    def post(self, item: T) -> None:
        loop = self.loop
        if loop is None:
            return
        with self._lock:
            self._items.append(item)
            if self._scheduled:
                return
            self._scheduled = True
        with contextlib.suppress(RuntimeError):  # loop closed: nobody is waiting any more
            loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        with self._lock:
            items, self._items = self._items, []
            self._scheduled = False
        self._handle(items)
