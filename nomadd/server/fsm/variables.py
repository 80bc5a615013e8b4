"""FSM cases of the variable entries: ``VAR_UPSERT`` and ``VAR_DELETE``."""

from __future__ import annotations

from nomadd.server.state import store_variables
from nomadd.server.state.store import Txn
from nomadd.server.state.store_variables import VarApplyResult
from nomadd.structs.requests.variables import VarDeleteEntry, VarUpsertEntry

__all__ = ["apply_var_delete", "apply_var_upsert"]


def apply_var_upsert(txn: Txn, entry: VarUpsertEntry) -> VarApplyResult:
    return store_variables.upsert_locked(
        txn,
        namespace=entry.namespace,
        path=entry.path,
        key_id=entry.key_id,
        data=entry.data,
        now_ns=entry.time,
        cas=entry.cas,
    )


def apply_var_delete(txn: Txn, entry: VarDeleteEntry) -> VarApplyResult:
    return store_variables.delete_locked(txn, namespace=entry.namespace, path=entry.path, cas=entry.cas)
