"""The ``service_registrations`` table (Nomad's native service discovery) and its indexes by
service name (``<namespace>\\x00<name>`` → IDs) and by allocation (alloc ID → IDs).

Writes come only from the FSM: a client's whole set for one allocation
(:func:`replace_alloc_locked`), one deletion by ID (:func:`delete_locked`), and the clean-ups
the allocation and node tables trigger: an allocation that became client-terminal
(:func:`delete_alloc_locked`) and a node that was removed (:func:`delete_node_locked`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from nomadd.server.state.store import Txn, register_table
from nomadd.server.state.store_jobs import Reader
from nomadd.structs.codec import from_wire, to_wire
from nomadd.structs.services import ServiceRegistration

__all__ = [
    "BY_ALLOC_TABLE",
    "BY_NAME_TABLE",
    "TABLE",
    "TABLES",
    "by_alloc",
    "by_name",
    "delete_alloc_locked",
    "delete_locked",
    "delete_node_locked",
    "list_all",
    "replace_alloc_locked",
]

TABLE = "service_registrations"
BY_NAME_TABLE = "service_registrations_by_name"
BY_ALLOC_TABLE = "service_registrations_by_alloc"
TABLES = (TABLE,)  # what blocking queries on services watch


def _encode(reg: ServiceRegistration) -> Any:
    return to_wire(reg)


def _decode(raw: Any) -> ServiceRegistration:
    return from_wire(ServiceRegistration, raw)


register_table(TABLE, _encode, _decode)
register_table(BY_NAME_TABLE, list, tuple)
register_table(BY_ALLOC_TABLE, list, tuple)


def name_key(namespace: str, name: str) -> str:
    return f"{namespace}\x00{name}"


def _index_add(txn: Txn, table: str, key: str, reg_id: str) -> None:
    ids: tuple[str, ...] = txn.get(table, key) or ()
    if reg_id not in ids:
        txn.put(table, key, (*ids, reg_id))


def _index_remove(txn: Txn, table: str, key: str, reg_id: str) -> None:
    ids: tuple[str, ...] = txn.get(table, key) or ()
    rest = tuple(i for i in ids if i != reg_id)
    if not rest:
        txn.delete(table, key)
    elif len(rest) != len(ids):
        txn.put(table, key, rest)


def _remove(txn: Txn, reg: ServiceRegistration) -> None:
    txn.delete(TABLE, reg.id)
    _index_remove(txn, BY_NAME_TABLE, name_key(reg.namespace, reg.service_name), reg.id)
    _index_remove(txn, BY_ALLOC_TABLE, reg.alloc_id, reg.id)


def replace_alloc_locked(txn: Txn, alloc_id: str, regs: Iterable[ServiceRegistration]) -> int:
    """The allocation's registrations become ``regs`` (an unchanged one keeps its indexes).
    Returns how many rows were written or removed."""
    wanted = {r.id: r for r in regs if r.alloc_id == alloc_id}
    changed = 0
    for stale in by_alloc(txn, alloc_id):
        if stale.id not in wanted:
            _remove(txn, stale)
            changed += 1
    for reg in wanted.values():
        old: ServiceRegistration | None = txn.get(TABLE, reg.id)
        if old is not None and dataclasses.replace(old, create_index=0, modify_index=0) == reg:
            continue
        create = old.create_index if old is not None else txn.index
        if old is not None and (old.namespace, old.service_name) != (reg.namespace, reg.service_name):
            _index_remove(txn, BY_NAME_TABLE, name_key(old.namespace, old.service_name), reg.id)
        txn.put(TABLE, reg.id, dataclasses.replace(reg, create_index=create, modify_index=txn.index))
        _index_add(txn, BY_NAME_TABLE, name_key(reg.namespace, reg.service_name), reg.id)
        _index_add(txn, BY_ALLOC_TABLE, alloc_id, reg.id)
        changed += 1
    return changed


def delete_locked(txn: Txn, namespace: str, reg_id: str) -> bool:
    reg: ServiceRegistration | None = txn.get(TABLE, reg_id)
    if reg is None or reg.namespace != namespace:
        return False
    _remove(txn, reg)
    return True


def delete_alloc_locked(txn: Txn, alloc_id: str) -> None:
    """Remove the allocation's registrations (it became client-terminal); cheap when it has none."""
    if txn.get(BY_ALLOC_TABLE, alloc_id):
        replace_alloc_locked(txn, alloc_id, ())


def delete_node_locked(txn: Txn, node_ids: Iterable[str]) -> None:
    """Remove the registrations of removed nodes (a scan: node removal is rare)."""
    gone = set(node_ids)
    if not gone:
        return
    for reg in [r for r in txn.table(TABLE).values() if r.node_id in gone]:
        _remove(txn, reg)


def _rows(reader: Reader, ids: Iterable[str]) -> list[ServiceRegistration]:
    out = [reader.get(TABLE, i) for i in ids]
    return [r for r in out if r is not None]


def by_name(reader: Reader, namespace: str, name: str) -> list[ServiceRegistration]:
    return _rows(reader, reader.get(BY_NAME_TABLE, name_key(namespace, name)) or ())


def by_alloc(reader: Reader, alloc_id: str) -> list[ServiceRegistration]:
    return _rows(reader, reader.get(BY_ALLOC_TABLE, alloc_id) or ())


def list_all(reader: Reader, namespace: str = "*") -> list[ServiceRegistration]:
    rows = reader.table(TABLE).values()
    found = [r for r in rows if namespace in ("*", r.namespace)]
    return sorted(found, key=lambda r: (r.namespace, r.service_name, r.create_index, r.id))
