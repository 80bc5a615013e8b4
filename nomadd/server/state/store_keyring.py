"""The ``root_keys`` table: the servers' root keys, wrapped (``structs/requests/keyring.py``)."""

from __future__ import annotations

import dataclasses
from typing import Any

from nomadd.server.state.store import StateSnapshot, Txn, register_table
from nomadd.structs.requests.keyring import RootKey, RootKeyState

__all__ = ["TABLE", "active", "get", "list_keys", "upsert_locked"]

TABLE = "root_keys"


def _encode(k: RootKey) -> list[Any]:
    return [k.key_id, str(k.state), k.create_time, k.algorithm, k.wrapped]


def _decode(raw: list[Any]) -> RootKey:
    key_id, state, created, algorithm, wrapped = raw
    return RootKey(
        key_id=key_id,
        state=RootKeyState(state),
        create_time=created,
        algorithm=algorithm,
        wrapped=bytes(wrapped),
    )


register_table(TABLE, _encode, _decode)


def upsert_locked(txn: Txn, key: RootKey) -> None:
    """Store ``key``; when it is active every other key becomes inactive."""
    if key.state == RootKeyState.ACTIVE:
        for other in list(txn.table(TABLE).values()):
            if other.key_id != key.key_id and other.state == RootKeyState.ACTIVE:
                txn.put(TABLE, other.key_id, dataclasses.replace(other, state=RootKeyState.INACTIVE))
    txn.put(TABLE, key.key_id, key)


def get(snap: StateSnapshot, key_id: str) -> RootKey | None:
    value: RootKey | None = snap.get(TABLE, key_id)
    return value


def active(snap: StateSnapshot) -> RootKey | None:
    return next((k for k in snap.table(TABLE).values() if k.state == RootKeyState.ACTIVE), None)


def list_keys(snap: StateSnapshot) -> list[RootKey]:
    return sorted(snap.table(TABLE).values(), key=lambda k: (k.create_time, k.key_id))
