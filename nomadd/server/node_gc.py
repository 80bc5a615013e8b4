"""Leader-only node garbage collection (Nomad's core scheduler ``nodeGC``).

Every ``server.node_gc_interval`` (Nomad: 5 min, not configurable there) the leader removes the
nodes that have been ``down`` for longer than ``server.node_gc_threshold`` (24 h) and whose
allocations are all terminal, with one ``Node.Deregister`` (Raft). :meth:`NodeGC.collect` with a
tiny threshold is what ``nomadd system gc`` / ``PUT /v1/system/gc`` runs (Nomad's force-gc).
"""

from __future__ import annotations

import logging
import time

from nomadd.server.context import ServerContext
from nomadd.server.periodic import PeriodicLeaderTask
from nomadd.server.state import store_nodes
from nomadd.structs.requests.node import NODE_DEREGISTER, NodeDeregisterRequest

logger = logging.getLogger(__name__)

__all__ = ["FORCE_GC_THRESHOLD_S", "NodeGC"]

FORCE_GC_THRESHOLD_S = 0.0  # Nomad's force-gc uses 1 ms; 0 here: any down node, whatever its age


class NodeGC(PeriodicLeaderTask):
    """Every ``node_gc_interval`` while this server leads."""

    name = "node-gc"

    def __init__(self, ctx: ServerContext) -> None:
        super().__init__()
        self._ctx = ctx

    def interval_s(self) -> float:
        return self._ctx.config.node_gc_interval

    async def tick(self) -> object:
        return await self.collect(self._ctx.config.node_gc_threshold)

    async def collect(self, threshold_s: float) -> list[str]:
        """Deregister eligible down nodes now; returns their IDs."""
        snap = self._ctx.store.snapshot()
        ids = store_nodes.gc_candidates(snap, now_s=time.time(), threshold_s=threshold_s)
        if not ids:
            logger.debug("node gc found nothing threshold_s=%g", threshold_s)
            return []
        logger.info("node gc removing nodes count=%d node_ids=%s", len(ids), ",".join(ids))
        await self._ctx.rpc(NODE_DEREGISTER, NodeDeregisterRequest(node_ids=tuple(ids)))
        return ids
