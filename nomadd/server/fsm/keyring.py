"""FSM case of the keyring entry: ``ROOT_KEY_UPSERT``."""

from __future__ import annotations

from nomadd.server.state import store_keyring
from nomadd.server.state.store import Txn
from nomadd.structs.requests.keyring import RootKeyUpsertEntry

__all__ = ["apply_root_key_upsert"]


def apply_root_key_upsert(txn: Txn, entry: RootKeyUpsertEntry) -> None:
    store_keyring.upsert_locked(txn, entry.key)
