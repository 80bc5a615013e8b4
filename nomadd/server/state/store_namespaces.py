"""The ``namespaces`` and ``node_pools`` tables, keyed by name.

Writes come only from the FSM (``server/fsm/namespace.py``). The ``default`` namespace and the
built-in pools ``default`` and ``all`` exist whether or not they were ever written (a write of
``default`` may change its description); a node pool a client names in its configuration exists
from the moment a node in it registers (Nomad creates such a pool; here it is derived from the
``nodes`` table on read, so node registration stays one table write). A delete is refused, as a
value, while the object is in use: every server reaches the same answer from the same state.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from nomadd.server.state import store_jobs, store_nodes, store_summaries, store_variables
from nomadd.server.state.store import Txn, register_table
from nomadd.server.state.store_jobs import Reader
from nomadd.structs.codec import from_wire, to_wire
from nomadd.structs.job import JobStatus
from nomadd.structs.namespace import (
    BUILTIN_POOLS,
    DEFAULT_NAMESPACE,
    Namespace,
    NodePool,
    builtin_namespace,
    builtin_pool,
)

__all__ = [
    "NAMESPACES_TABLE",
    "NODE_POOLS_TABLE",
    "delete_namespaces_locked",
    "delete_pools_locked",
    "disallowed_drivers",
    "get_namespace",
    "get_pool",
    "list_namespaces",
    "list_pools",
    "pool_exists",
    "upsert_namespaces_locked",
    "upsert_pools_locked",
]

NAMESPACES_TABLE = "namespaces"
NODE_POOLS_TABLE = "node_pools"

register_table(NAMESPACES_TABLE, to_wire, lambda raw: from_wire(Namespace, raw))
register_table(NODE_POOLS_TABLE, to_wire, lambda raw: from_wire(NodePool, raw))


def _indexed(txn: Txn, table: str, obj: Namespace | NodePool) -> Namespace | NodePool:
    old = txn.get(table, obj.name)
    create = old.create_index if old is not None else txn.index
    return dataclasses.replace(obj, create_index=create, modify_index=txn.index)


def upsert_namespaces_locked(txn: Txn, namespaces: Iterable[Namespace]) -> None:
    for ns in namespaces:
        txn.put(NAMESPACES_TABLE, ns.name, _indexed(txn, NAMESPACES_TABLE, ns))


def upsert_pools_locked(txn: Txn, pools: Iterable[NodePool]) -> str:
    """Store ``pools``; the built-in pools cannot be changed (Nomad's message, nothing written)."""
    pools = tuple(pools)
    for pool in pools:
        if pool.name in BUILTIN_POOLS:
            return f'modifying node pool "{pool.name}" is not allowed'
    for pool in pools:
        txn.put(NODE_POOLS_TABLE, pool.name, _indexed(txn, NODE_POOLS_TABLE, pool))
    return ""


def _live_job(reader: Reader, namespace: str = "*", pool: str = "") -> str:
    for job in store_jobs.list_jobs(reader, namespace):
        if pool and job.node_pool != pool:
            continue
        if store_summaries.job_status(reader, job) != JobStatus.DEAD:
            return job.id
    return ""


def delete_namespaces_locked(txn: Txn, names: Iterable[str]) -> str:
    """Delete every namespace of ``names`` or none: the refusal (Nomad's words), or ``""``."""
    names = tuple(names)
    for name in names:
        if name == DEFAULT_NAMESPACE:
            return "default namespace can not be deleted"
        if txn.get(NAMESPACES_TABLE, name) is None:
            return "namespace not found"
        job_id = _live_job(txn, name)
        if job_id:
            return (
                f'namespace "{name}" contains at least one non-terminal job "{job_id}". '
                "All jobs must be terminal in namespace before it can be deleted"
            )
        if any(v.namespace == name for v in txn.table(store_variables.TABLE).values()):
            return (
                f'namespace "{name}" contains at least one variable. '
                "All variables in namespace must be deleted before it can be deleted"
            )
    for name in names:
        txn.delete(NAMESPACES_TABLE, name)
    return ""


def delete_pools_locked(txn: Txn, names: Iterable[str], region: str) -> str:
    """Delete every node pool of ``names`` or none (Nomad's checks, for this ``region``)."""
    names = tuple(names)
    for name in names:
        if name in BUILTIN_POOLS:
            return f'deleting node pool "{name}" is not allowed'
        if txn.get(NODE_POOLS_TABLE, name) is None:
            return f"node pool {name} not found"
        if _live_job(txn, pool=name):
            return f'node pool "{name}" has non-terminal jobs in regions: [{region}]'
        if any(n.node_pool == name for n in txn.table(store_nodes.TABLE).values()):
            return f'node pool "{name}" has nodes in regions: [{region}]'
    for name in names:
        txn.delete(NODE_POOLS_TABLE, name)
    return ""


# ---- reads ---------------------------------------------------------------------------------


class RowReader(Protocol):
    def get(self, table: str, key: str) -> Any | None: ...


def get_namespace(reader: RowReader, name: str) -> Namespace | None:
    """Also with the store itself (one row, no snapshot)."""
    ns: Namespace | None = reader.get(NAMESPACES_TABLE, name)
    if ns is None and name == DEFAULT_NAMESPACE:
        return builtin_namespace()
    return ns


def list_namespaces(reader: Reader, prefix: str = "") -> list[Namespace]:
    """Every namespace whose name starts with ``prefix``, sorted by name."""
    found: dict[str, Namespace] = {DEFAULT_NAMESPACE: builtin_namespace()}
    found.update(reader.table(NAMESPACES_TABLE))
    return [ns for name, ns in sorted(found.items()) if name.startswith(prefix)]


def _pools(reader: Reader) -> dict[str, NodePool]:
    found = {name: builtin_pool(name) for name in BUILTIN_POOLS}
    for node in reader.table(store_nodes.TABLE).values():
        if node.node_pool and node.node_pool not in found:
            found[node.node_pool] = NodePool(
                name=node.node_pool, create_index=node.create_index, modify_index=node.create_index
            )
    found.update(reader.table(NODE_POOLS_TABLE))
    return found


def get_pool(reader: Reader, name: str) -> NodePool | None:
    pool: NodePool | None = reader.get(NODE_POOLS_TABLE, name)
    if pool is not None:
        return pool
    if name in BUILTIN_POOLS:
        return builtin_pool(name)
    return _pools(reader).get(name)  # one a node names: a scan of the nodes


def disallowed_drivers(ns: Namespace, drivers: Iterable[str]) -> list[str]:
    """The task drivers of ``drivers`` the namespace's capabilities refuse (Nomad's
    taskValidateDriver: an enabled list allows only those, a disabled list refuses those)."""
    caps = ns.capabilities
    if caps is None:
        return []
    out = []
    for driver in drivers:
        allowed = not caps.enabled_task_drivers or driver in caps.enabled_task_drivers
        if not allowed or driver in caps.disabled_task_drivers:
            out.append(driver)
    return out


def pool_exists(store: RowReader, name: str, snapshot: Callable[[], Reader]) -> bool:
    """Whether node pool ``name`` exists, reading one row when it is built in or was written
    (``snapshot`` only for a pool that only nodes name)."""
    if name in BUILTIN_POOLS or store.get(NODE_POOLS_TABLE, name) is not None:
        return True
    return get_pool(snapshot(), name) is not None


def list_pools(reader: Reader, prefix: str = "") -> list[NodePool]:
    return [p for name, p in sorted(_pools(reader).items()) if name.startswith(prefix)]
