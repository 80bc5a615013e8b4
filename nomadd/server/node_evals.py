"""Node-triggered evaluations (leader only; Nomad's createNodeEvals and the drainer's evals).

The leader keeps a small view of every node (status, eligibility, drain) and, after each
committed node entry, compares it with the nodes table:

* a node went ``down`` or ``disconnected`` → a ``node-update`` eval for every job with a live
  allocation on it (the scheduler marks them lost and replaces them) and every system job;
* a node became ``ready`` (registered, came back) → ``node-update`` evals for the jobs with
  allocations on it (replaced ones get stopped) and every system job (it gets its allocation);
* a node became eligible → ``node-update`` evals for the system jobs;
* a drain started → a ``node-drain`` eval for every job with a live allocation on it (the
  reconciler migrates allocations off a draining node).

:meth:`NodeEvals.on_nodes_changed` returns True when capacity may have appeared (a node became
ready or eligible), so the caller releases blocked evals.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence

from nomadd.helper.supervisor import Supervisor
from nomadd.server.alloc_endpoint import new_eval
from nomadd.server.state import store_allocs, store_jobs
from nomadd.server.state.store import KeptRows, StateSnapshot, StateStore, kept_rows
from nomadd.structs.eval import EvalTrigger, Evaluation
from nomadd.structs.job import Job, JobType
from nomadd.structs.node import Node, NodeEligibility, NodeStatus

logger = logging.getLogger(__name__)

__all__ = ["NodeEvals", "evals_for_node"]

NODES_TABLE = "nodes"  # state/store_nodes.py's table (structs.Node values)
_GONE = frozenset({NodeStatus.DOWN, NodeStatus.DISCONNECTED})

_View = tuple[str, str, bool]  # (status, eligibility, draining)


def _view(node: Node) -> _View:
    return str(node.status), str(node.scheduling_eligibility), node.drain_strategy is not None


def _live_system(job: Job) -> bool:
    return job.type in (JobType.SYSTEM, JobType.SYSBATCH) and not job.stop


def evals_for_node(
    snap: StateSnapshot,
    node: Node,
    trigger: EvalTrigger,
    *,
    system_jobs: Iterable[Job] = (),
    live_only: bool,
    now_ns: int,
) -> list[Evaluation]:
    """One eval per job with an allocation on ``node`` and per job of ``system_jobs``."""
    jobs: dict[tuple[str, str], Job] = {}
    for alloc in store_allocs.allocs_by_node(snap, node.id):
        if live_only and alloc.terminal():
            continue
        job = store_jobs.get_job(snap, alloc.namespace, alloc.job_id)
        if job is not None:
            jobs[(job.namespace, job.id)] = job
    for job in system_jobs:
        jobs[(job.namespace, job.id)] = job
    return [
        new_eval(
            job_id=job.id,
            namespace=job.namespace,
            job_type=str(job.type),
            priority=job.priority,
            trigger=trigger,
            now_ns=now_ns,
            node_id=node.id,
            node_modify_index=node.modify_index,
            job_modify_index=job.job_modify_index,
        )
        for _, job in sorted(jobs.items())
    ]


class NodeEvals:
    def __init__(
        self, store: StateStore, write_evals: Callable[[Sequence[Evaluation]], Awaitable[int]]
    ) -> None:
        self._store = store
        self._write = write_evals
        self._views: dict[str, _View] = {}
        # the live system and sysbatch jobs by job key, kept from the jobs written since the
        # last node change: a node transition costs O(changed jobs), not a scan of every job
        self._system: KeptRows[Job] | None = None
        self._tasks = Supervisor("node-evals")
        self.enabled = False

    def set_enabled(self, enabled: bool) -> None:
        self.enabled = enabled
        self._system = kept_rows(self._system, enabled, self._store, store_jobs.TABLE, _live_system)
        if enabled:
            snap = self._store.snapshot()
            self._views = {n.id: _view(n) for n in snap.table(NODES_TABLE).values()}
        else:
            self._views = {}
            self._tasks.cancel_all()

    def on_nodes_changed(self, index: int, node_ids: Iterable[str] | None = None) -> bool:
        """Compare the nodes ``node_ids`` wrote (None: every node) with the last view."""
        if not self.enabled:
            return False
        assert self._system is not None
        snap = self._system.take()
        system = self._system.rows.values()
        table = snap.table(NODES_TABLE)
        if node_ids is None:
            nodes: dict[str, Node] = dict(table)
            gone = set(self._views) - set(nodes)
        else:
            nodes = {i: table[i] for i in node_ids if i in table}
            gone = {i for i in node_ids if i not in table}
        now = time.time_ns()
        evals: list[Evaluation] = []
        capacity = False
        for node_id, node in nodes.items():
            new = _view(node)
            old = self._views.get(node_id)
            if old == new:
                continue
            self._views[node_id] = new
            was_status, was_elig, was_drain = old or ("", "", False)
            status, elig, draining = new
            if status in _GONE and status != was_status:  # disconnected, down, or disconnected then down
                evals += evals_for_node(
                    snap, node, EvalTrigger.NODE_UPDATE, system_jobs=system, live_only=True, now_ns=now
                )
                logger.info("node down evals node_id=%s status=%s evals=%d", node_id, status, len(evals))
            elif status == NodeStatus.READY and was_status != NodeStatus.READY:
                evals += evals_for_node(
                    snap, node, EvalTrigger.NODE_UPDATE, system_jobs=system, live_only=False, now_ns=now
                )
                capacity = True
            elif elig == NodeEligibility.ELIGIBLE and was_elig == NodeEligibility.INELIGIBLE:
                evals += evals_for_node(
                    snap, node, EvalTrigger.NODE_UPDATE, system_jobs=system, live_only=True, now_ns=now
                )
                capacity = True
            if draining and not was_drain and old is not None:
                evals += evals_for_node(snap, node, EvalTrigger.NODE_DRAIN, live_only=True, now_ns=now)
            elif not draining and was_drain:
                capacity = True
        for node_id in gone:
            self._views.pop(node_id, None)
        if evals:
            self._tasks.spawn(self._commit(evals, index), "node-evals")
        return capacity

    async def _commit(self, evals: list[Evaluation], index: int) -> None:
        try:
            await self._write(evals)
        except Exception as err:
            logger.warning("node evals not committed count=%d index=%d err=%r", len(evals), index, err)
