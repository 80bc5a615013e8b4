"""FSM cases of the node entries: ``NODE_REGISTER``, ``NODE_UPDATE_STATUS``, ``NODE_DEREGISTER``,
``NODE_UPDATE_ELIGIBILITY``, ``NODE_UPDATE_DRAIN`` and the clients' ``ALLOC_CLIENT_UPDATE``.

Each returns a :class:`~nomadd.server.state.store_nodes.NodeWriteResult` (node entries; the
leader's node-eval watcher reads which nodes were written) or an
:class:`~nomadd.server.state.store_evals.ApplyResult` (client updates: the ``alloc-failure``
evaluations to enqueue, and whether capacity was freed).
"""

from __future__ import annotations

from nomadd.server.state import store_allocs, store_evals, store_nodes
from nomadd.server.state.store import Txn
from nomadd.server.state.store_evals import ApplyResult
from nomadd.server.state.store_nodes import NodeWriteResult
from nomadd.structs.requests.node import (
    AllocClientUpdateEntry,
    NodeDeregisterEntry,
    NodeDrainEntry,
    NodeEligibilityEntry,
    NodeRegisterEntry,
    NodeStatusEntry,
)

__all__ = [
    "apply_alloc_client_update",
    "apply_deregister",
    "apply_drain",
    "apply_eligibility",
    "apply_register",
    "apply_status",
]


def apply_register(txn: Txn, entry: NodeRegisterEntry) -> NodeWriteResult:
    return store_nodes.upsert_locked(txn, entry.node, now_s=entry.now_s, timestamp=entry.timestamp)


def apply_status(txn: Txn, entry: NodeStatusEntry) -> NodeWriteResult:
    return store_nodes.update_status_locked(
        txn, entry.node_id, entry.status, event=entry.event, now_s=entry.now_s, timestamp=entry.timestamp
    )


def apply_deregister(txn: Txn, entry: NodeDeregisterEntry) -> NodeWriteResult:
    return store_nodes.delete_locked(txn, entry.node_ids)


def apply_eligibility(txn: Txn, entry: NodeEligibilityEntry) -> NodeWriteResult:
    return store_nodes.update_eligibility_locked(
        txn, entry.node_id, entry.eligibility, timestamp=entry.timestamp
    )


def apply_drain(txn: Txn, entry: NodeDrainEntry) -> NodeWriteResult:
    return store_nodes.update_drain_locked(
        txn,
        entry.node_id,
        entry.drain_strategy,
        mark_eligible=entry.mark_eligible,
        complete=entry.complete,
        meta=entry.meta,
        timestamp=entry.timestamp,
    )


def apply_alloc_client_update(txn: Txn, entry: AllocClientUpdateEntry) -> ApplyResult:
    updated = store_allocs.update_client_locked(txn, entry.allocs, entry.time_ns)
    evals = store_evals.upsert_evals_locked(txn, entry.evals)
    freed = any(a.client_terminal() for a in updated)
    return ApplyResult(evals=tuple(evals), freed=freed, placed=0, stopped=0)
