"""The ``variables`` table: Nomad Variables (``/v1/var/:path``), keyed by namespace and path.

Rows are :class:`VariableEncrypted` (items sealed by the endpoint, ``server/keyring.py``).
Writes come only from the FSM (:func:`upsert_locked`, :func:`delete_locked`); both implement
Nomad's check-and-set (``cas``): ``cas=0`` means "only if absent", ``cas=N`` means "only if the
current ModifyIndex is N". A failed check is a rule rejection, returned as a value
(:class:`VarApplyResult` with ``conflict=True``), never raised: every server must reach the same
answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nomadd.server.state.store import StateSnapshot, Txn, register_table
from nomadd.structs.variables import VariableEncrypted

__all__ = [
    "TABLE",
    "VarApplyResult",
    "delete_locked",
    "get",
    "list_prefix",
    "upsert_locked",
]

TABLE = "variables"


@dataclass(frozen=True, slots=True, kw_only=True)
class VarApplyResult:
    """What an applied VAR_UPSERT / VAR_DELETE did. ``current`` is the row after (or blocking)."""

    conflict: bool
    current: VariableEncrypted | None


def _key(namespace: str, path: str) -> str:
    return f"{namespace}\x00{path}"


def _encode(v: VariableEncrypted) -> list[Any]:
    return [
        v.namespace,
        v.path,
        v.key_id,
        v.data,
        v.create_index,
        v.modify_index,
        v.create_time,
        v.modify_time,
    ]


def _decode(raw: list[Any]) -> VariableEncrypted:
    ns, path, key_id, data, ci, mi, ct, mt = raw
    return VariableEncrypted(
        namespace=ns,
        path=path,
        key_id=key_id,
        data=bytes(data),
        create_index=ci,
        modify_index=mi,
        create_time=ct,
        modify_time=mt,
    )


register_table(TABLE, _encode, _decode)


def _cas_ok(current: VariableEncrypted | None, cas: int | None) -> bool:
    if cas is None:
        return True
    if cas == 0:
        return current is None
    return current is not None and current.modify_index == cas


def upsert_locked(
    txn: Txn,
    *,
    namespace: str,
    path: str,
    key_id: str,
    data: bytes,
    now_ns: int,
    cas: int | None,
) -> VarApplyResult:
    key = _key(namespace, path)
    current: VariableEncrypted | None = txn.get(TABLE, key)
    if not _cas_ok(current, cas):
        return VarApplyResult(conflict=True, current=current)
    var = VariableEncrypted(
        namespace=namespace,
        path=path,
        key_id=key_id,
        data=data,
        create_index=current.create_index if current else txn.index,
        modify_index=txn.index,
        create_time=current.create_time if current else now_ns,
        modify_time=now_ns,
    )
    txn.put(TABLE, key, var)
    return VarApplyResult(conflict=False, current=var)


def delete_locked(txn: Txn, *, namespace: str, path: str, cas: int | None) -> VarApplyResult:
    key = _key(namespace, path)
    current: VariableEncrypted | None = txn.get(TABLE, key)
    if not _cas_ok(current, cas) and not (cas == 0 and current is None):
        return VarApplyResult(conflict=True, current=current)
    txn.delete(TABLE, key)
    return VarApplyResult(conflict=False, current=None)


def get(snap: StateSnapshot, namespace: str, path: str) -> VariableEncrypted | None:
    value: VariableEncrypted | None = snap.get(TABLE, _key(namespace, path))
    return value


def list_prefix(snap: StateSnapshot, namespace: str, prefix: str) -> list[VariableEncrypted]:
    """Variables of ``namespace`` (``"*"`` = all) whose path starts with ``prefix``, sorted."""
    out = [
        v
        for v in snap.table(TABLE).values()
        if (namespace == "*" or v.namespace == namespace) and v.path.startswith(prefix)
    ]
    return sorted(out, key=lambda v: (v.namespace, v.path))
