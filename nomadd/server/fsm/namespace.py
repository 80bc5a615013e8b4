"""FSM cases of namespaces and node pools: ``NAMESPACE_*`` and ``NODE_POOL_*``.

Each returns ``""`` or the refusal the proposer answers with (nothing was written then)."""

from __future__ import annotations

from nomadd.server.state import store_namespaces
from nomadd.server.state.store import Txn
from nomadd.structs.requests.namespace import NamedDeleteEntry, NamespaceUpsertEntry, NodePoolUpsertEntry

__all__ = [
    "apply_namespace_delete",
    "apply_namespace_upsert",
    "apply_node_pool_delete",
    "apply_node_pool_upsert",
]


def apply_namespace_upsert(txn: Txn, entry: NamespaceUpsertEntry) -> str:
    store_namespaces.upsert_namespaces_locked(txn, entry.namespaces)
    return ""


def apply_namespace_delete(txn: Txn, entry: NamedDeleteEntry) -> str:
    return store_namespaces.delete_namespaces_locked(txn, entry.names)


def apply_node_pool_upsert(txn: Txn, entry: NodePoolUpsertEntry) -> str:
    return store_namespaces.upsert_pools_locked(txn, entry.pools)


def apply_node_pool_delete(txn: Txn, entry: NamedDeleteEntry) -> str:
    return store_namespaces.delete_pools_locked(txn, entry.names, entry.region)
