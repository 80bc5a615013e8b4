"""The leader's drainer (Nomad's ``nomad/drainer``): moves allocations off draining nodes a few
at a time, then completes the drain.

A drain is started and canceled with ``Node.UpdateDrain`` (:mod:`nomadd.server.node_endpoint`,
the ``NODE_UPDATE_DRAIN`` entry): setting a strategy marks the node ineligible and records
``LastDrain`` (draining). The scheduler moves only the allocations marked
``DesiredTransition.Migrate`` (stop here, place elsewhere); :class:`Drainer` (leader only) marks
them, every ``DRAIN_CHECK_S``, per draining node:

* **deadline passed** (``force_deadline``; ``-force`` sets it to now): every allocation still on
  the node is marked at once (system ones too unless the drain ignores them) and the drain
  completes (Nomad's deadlined drain);
* **service jobs**: per task group, :func:`~nomadd.server.drain_batch.group_to_mark` — at most
  ``migrate.max_parallel`` moving whose replacements are not healthy yet;
* **batch jobs**: left to finish until the deadline;
* **system jobs** last: once nothing else runs on the node, its system allocations are marked
  (not with ``ignore_system_jobs``); when they have stopped too, and every replacement of a
  migrated allocation has a health verdict (``drain_batch.replacements_pending``: the work runs
  elsewhere, not just placed), the drain completes (strategy cleared, node stays ineligible,
  ``LastDrain.Status = complete``, event ``Node drain complete``).

Marks and one ``node-drain`` evaluation per job they touch are committed together in one
``ALLOC_UPDATE`` entry (as ``Alloc.Stop`` does), so the scheduler acts on them at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from nomadd.server.alloc_endpoint import new_eval
from nomadd.server.context import ServerContext
from nomadd.server.drain_batch import group_to_mark, node_remaining, replacements_pending
from nomadd.server.periodic import PeriodicLeaderTask
from nomadd.server.state import store_allocs, store_jobs, store_nodes
from nomadd.server.state.store import KeptRows, StateSnapshot, kept_rows
from nomadd.structs.alloc import Allocation, DesiredTransition
from nomadd.structs.eval import EvalTrigger
from nomadd.structs.job import JobType
from nomadd.structs.messages import MessageType
from nomadd.structs.node import Node
from nomadd.structs.requests.alloc import AllocTransition, AllocUpdateEntry
from nomadd.structs.requests.node import NodeDrainEntry
from nomadd.structs.timeutil import format_time, parse_time

logger = logging.getLogger(__name__)

__all__ = ["DRAIN_CHECK_S", "DrainStep", "Drainer", "drain_step"]

DRAIN_CHECK_S = 0.5  # how often the leader looks at draining nodes (cheap: only those)
_MIGRATE = DesiredTransition(migrate=True)


class DrainStep:
    """What one look at the draining nodes decided: allocations to mark, nodes done."""

    def __init__(self) -> None:
        self.mark: dict[str, Allocation] = {}
        self.complete: list[str] = []

    def add(self, allocs: list[Allocation]) -> None:
        for alloc in allocs:
            if not alloc.desired_transition.migrate and not alloc.server_terminal():
                self.mark.setdefault(alloc.id, alloc)


def _deadline_passed(node: Node, now_ns: int) -> bool:
    strategy = node.drain_strategy
    return (
        strategy is not None
        and bool(strategy.force_deadline)
        and parse_time(strategy.force_deadline) <= now_ns
    )


def _is_draining(node: Node) -> bool:
    return node.drain_strategy is not None


def drain_step(snap: StateSnapshot, now_ns: int, draining: Mapping[str, Node] | None = None) -> DrainStep:
    """Decide the marks and completions for every draining node in ``snap`` (``draining``: those
    nodes by ID, as of ``snap``; None: found by a scan of every node)."""
    step = DrainStep()
    if draining is None:
        draining = {n.id: n for n in snap.table(store_nodes.TABLE).values() if _is_draining(n)}
    jobs: set[tuple[str, str]] = set()
    for node_id in sorted(draining):
        node = draining[node_id]
        others, system = node_remaining(node, store_allocs.allocs_by_node(snap, node_id))
        if _deadline_passed(node, now_ns):
            step.add(others + system)
            step.complete.append(node_id)
        elif others:
            jobs.update((a.namespace, a.job_id) for a in others)
        elif system:
            step.add(system)  # everything else is gone: system allocations go last
        else:
            moved = store_allocs.allocs_by_node(snap, node_id)
            pending = replacements_pending(moved, lambda i: store_allocs.get_alloc(snap, i), now_ns)
            if not pending:  # and every replacement's health is known: the work runs elsewhere
                step.complete.append(node_id)
    for namespace, job_id in sorted(jobs):
        job = store_jobs.get_job(snap, namespace, job_id)
        if job is None or job.type != JobType.SERVICE:
            continue  # batch: runs until done or the deadline; system: last, above
        allocs = store_allocs.allocs_by_job(snap, namespace, job_id)
        for tg in job.task_groups:
            step.add(group_to_mark(tg, allocs, draining, now_ns))
    return step


class Drainer(PeriodicLeaderTask):
    """Marks allocations on draining nodes for migration and completes drains, every
    ``DRAIN_CHECK_S``."""

    name = "drainer"

    def __init__(self, ctx: ServerContext) -> None:
        super().__init__()
        self._ctx = ctx
        # the draining nodes while leading, from the nodes written since the last check (a
        # check costs O(draining + changed nodes), not a scan of every node each DRAIN_CHECK_S)
        self._draining: KeptRows[Node] | None = None

    def interval_s(self) -> float:
        return DRAIN_CHECK_S

    def set_enabled(self, enabled: bool) -> None:
        self._draining = kept_rows(self._draining, enabled, self._ctx.store, store_nodes.TABLE, _is_draining)
        super().set_enabled(enabled)

    async def tick(self) -> object:
        return await self.check()

    async def check(self) -> list[str]:
        """One pass; returns the nodes whose drain it completed."""
        now = time.time_ns()
        if self._draining is None:  # not leading (a direct call): look at every node
            step = drain_step(self._ctx.store.snapshot(), now)
        else:
            snap = self._draining.take()
            step = drain_step(snap, now, self._draining.rows)
        if step.mark:
            await self._mark(list(step.mark.values()), now)
        for node_id in step.complete:
            entry = NodeDrainEntry(node_id=node_id, complete=True, timestamp=format_time(now))
            await self._ctx.propose(MessageType.NODE_UPDATE_DRAIN, entry)
            logger.info("node drain complete node_id=%s", node_id)
        return step.complete

    async def _mark(self, allocs: list[Allocation], now_ns: int) -> None:
        evals = {}
        for alloc in allocs:
            if (alloc.namespace, alloc.job_id) in evals:
                continue
            job = alloc.job
            evals[(alloc.namespace, alloc.job_id)] = new_eval(
                job_id=alloc.job_id,
                namespace=alloc.namespace,
                job_type=alloc.job_type or (str(job.type) if job else "service"),
                priority=job.priority if job else 50,
                trigger=EvalTrigger.NODE_DRAIN,
                now_ns=now_ns,
                node_id=alloc.node_id,
                job_modify_index=job.job_modify_index if job else 0,
            )
        entry = AllocUpdateEntry(
            transitions=tuple(AllocTransition(alloc_id=a.id, transition=_MIGRATE) for a in allocs),
            evals=tuple(evals.values()),
        )
        await self._ctx.propose(MessageType.ALLOC_UPDATE, entry)
        logger.info(
            "drain marked allocs for migration count=%d allocs=%s",
            len(allocs),
            ",".join(a.id[:8] for a in allocs),
        )
