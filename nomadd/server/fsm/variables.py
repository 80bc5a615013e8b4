"""FSM cases of the variable entries: ``VAR_UPSERT`` and ``VAR_DELETE``."""

from __future__ import annotations

from typing import Any

from nomadd.server.state import store_variables
from nomadd.server.state.store import Txn

__all__ = ["apply_var_delete", "apply_var_upsert"]


def apply_var_upsert(txn: Txn, req: dict[str, Any]) -> object:
    return store_variables.upsert_locked(
        txn,
        namespace=req["Namespace"],
        path=req["Path"],
        items=req["Items"],
        now_ns=req["Time"],
        cas=req.get("CAS"),
    )


def apply_var_delete(txn: Txn, req: dict[str, Any]) -> object:
    return store_variables.delete_locked(
        txn, namespace=req["Namespace"], path=req["Path"], cas=req.get("CAS")
    )
