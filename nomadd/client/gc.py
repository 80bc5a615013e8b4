"""Client-side garbage collection of finished allocations (Nomad's ``client/gc.go``, reduced).

Finished allocations stay on the node (their directories and logs remain readable through
``alloc logs``) until the servers forget them or the node holds more than ``GC_MAX_ALLOCS``
allocations; then the oldest terminal ones (all tasks dead, or stopped by the servers) are
destroyed first. Nomad also collects on disk and inode usage thresholds; nomadd does not yet.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

from nomadd.structs.alloc import AllocClientStatus

logger = logging.getLogger(__name__)

__all__ = ["GC_INTERVAL_S", "GC_MAX_ALLOCS", "gc_candidates", "run_gc"]

GC_INTERVAL_S = 60.0  # Nomad's client gc_interval
GC_MAX_ALLOCS = 50  # Nomad's client gc_max_allocs


class _Runner(Protocol):
    @property
    def status(self) -> AllocClientStatus: ...

    @property
    def create_index(self) -> int: ...

    def terminal(self) -> bool: ...


def gc_candidates(runners: Mapping[str, _Runner], max_allocs: int = GC_MAX_ALLOCS) -> list[str]:
    """IDs to destroy so that at most ``max_allocs`` remain, oldest terminal first (running
    allocations are never collected)."""
    excess = len(runners) - max_allocs
    if excess <= 0:
        return []
    terminal = sorted((r.create_index, alloc_id) for alloc_id, r in runners.items() if r.terminal())
    return [alloc_id for _, alloc_id in terminal[:excess]]


async def run_gc(
    runners: Callable[[], Mapping[str, _Runner]],
    destroy: Callable[[str], Awaitable[None]],
    *,
    interval_s: float = GC_INTERVAL_S,
    max_allocs: int = GC_MAX_ALLOCS,
) -> None:
    """Every ``interval_s``, destroy what :func:`gc_candidates` names."""
    while True:
        await asyncio.sleep(interval_s)
        for alloc_id in gc_candidates(runners(), max_allocs):
            logger.info("garbage collecting allocation alloc_id=%s reason=max_allocs", alloc_id)
            try:
                await destroy(alloc_id)
            except Exception:
                logger.exception("alloc gc failed alloc_id=%s", alloc_id)
