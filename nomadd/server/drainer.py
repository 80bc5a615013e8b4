"""The leader's drainer (Nomad's ``nomad/drainer``): completes node drains.

A drain is started and canceled with ``Node.UpdateDrain`` (:mod:`nomadd.server.node_endpoint`,
the ``NODE_UPDATE_DRAIN`` entry): setting a strategy marks the node ineligible and records
``LastDrain`` (draining); the leader's node-eval watcher (``node_evals``) then creates a
``node-drain`` evaluation per job with live allocations on the node, and the reconciler migrates
them (stop here, place elsewhere).

:class:`Drainer` (leader only) checks draining nodes every ``DRAIN_CHECK_S``: once no
allocation on the node is still wanted running (system jobs excepted when the drain ignores
them) — or the force deadline passed — it commits the drain as complete (strategy cleared,
node stays ineligible, ``LastDrain.Status = complete``, event ``Node drain complete``).

Simplification (said plainly): allocations are migrated all at once, not ``max_parallel`` at a
time, so the deadline only bounds how long the drain waits for the scheduler.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from nomadd.server.context import ServerContext
from nomadd.server.periodic import PeriodicLeaderTask
from nomadd.server.state import store_allocs, store_nodes
from nomadd.structs.alloc import Allocation
from nomadd.structs.job import JobType
from nomadd.structs.messages import MessageType
from nomadd.structs.node import Node
from nomadd.structs.requests.node import NodeDrainEntry
from nomadd.structs.timeutil import format_time, parse_time

logger = logging.getLogger(__name__)

__all__ = ["DRAIN_CHECK_S", "Drainer", "drain_done"]

DRAIN_CHECK_S = 0.5  # how often the leader looks at draining nodes (cheap: only those)


def drain_done(node: Node, allocs: Iterable[Allocation], now_ns: int) -> bool:
    """No allocation on the node is still wanted running (or the force deadline passed)."""
    strategy = node.drain_strategy
    if strategy is None:
        return False
    if strategy.force_deadline and parse_time(strategy.force_deadline) <= now_ns:
        return True
    for alloc in allocs:
        if alloc.terminal():
            continue
        if strategy.ignore_system_jobs and alloc.job is not None and alloc.job.type == JobType.SYSTEM:
            continue
        return False
    return True


class Drainer(PeriodicLeaderTask):
    """Completes drains whose node has nothing left to migrate, every ``DRAIN_CHECK_S``."""

    name = "drainer"

    def __init__(self, ctx: ServerContext) -> None:
        super().__init__()
        self._ctx = ctx

    def interval_s(self) -> float:
        return DRAIN_CHECK_S

    async def tick(self) -> object:
        return await self.check()

    async def check(self) -> list[str]:
        snap = self._ctx.store.snapshot()
        now = time.time_ns()
        done = []
        # runs every DRAIN_CHECK_S on the leader: only the draining nodes are sorted
        draining = [n for n in snap.table(store_nodes.TABLE).values() if n.drain_strategy is not None]
        for node in sorted(draining, key=lambda n: n.id):
            if drain_done(node, store_allocs.allocs_by_node(snap, node.id), now):
                entry = NodeDrainEntry(node_id=node.id, complete=True, timestamp=format_time(now))
                await self._ctx.propose(MessageType.NODE_UPDATE_DRAIN, entry)
                logger.info("node drain complete node_id=%s", node.id)
                done.append(node.id)
        return done
