"""``Variables.*`` RPCs (Nomad's variables_endpoint.go): Apply (write), Read, List.

The endpoint makes the timestamp (the FSM must not read the clock) and validates the request;
check-and-set conflicts come back from the FSM as values and are returned as
``{"Conflict": true, "Var": <current or None>}``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from nomadd.server.fsm import encode_payload
from nomadd.server.state import store_variables
from nomadd.server.state.store import StateSnapshot
from nomadd.structs.errors import ValidationError
from nomadd.structs.messages import MessageType

if TYPE_CHECKING:
    from nomadd.rpc import RPCRegistry
    from nomadd.server.server import Server

__all__ = ["register"]

MAX_PATH_LEN = 128  # Nomad's variable path limit
_TABLES = (store_variables.TABLE,)


def _check_path(path: str) -> str:
    path = path.strip("/")
    if not path or len(path) > MAX_PATH_LEN:
        raise ValidationError(f"invalid variable path {path!r}: 1-{MAX_PATH_LEN} characters")
    if any(part in ("", ".", "..") for part in path.split("/")):
        raise ValidationError(f"invalid variable path {path!r}: empty or relative segment")
    return path


def _cas(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        cas = int(value)
    except (TypeError, ValueError):
        raise ValidationError(f"invalid cas value {value!r}") from None
    if cas < 0:
        raise ValidationError("cas must not be negative")
    return cas


def register(server: Server, registry: RPCRegistry) -> None:
    async def apply(args: dict[str, Any]) -> dict[str, Any]:
        op = args.get("Op", "set")
        var = args.get("Var") or {}
        namespace = str(var.get("Namespace") or "default")
        path = _check_path(str(var.get("Path") or ""))
        cas = _cas(args.get("CAS"))
        if op == "set":
            items = var.get("Items")
            if not isinstance(items, dict) or not items:
                raise ValidationError("variable items must be a non-empty map of strings")
            if not all(isinstance(k, str) and isinstance(v, str) for k, v in items.items()):
                raise ValidationError("variable items must be a map of strings to strings")
            req = {
                "Namespace": namespace,
                "Path": path,
                "Items": items,
                "Time": time.time_ns(),
                "CAS": cas,
            }
            msg = MessageType.VAR_UPSERT
        elif op == "delete":
            req = {"Namespace": namespace, "Path": path, "CAS": cas}
            msg = MessageType.VAR_DELETE
        else:
            raise ValidationError(f"unknown variable operation {op!r}")
        result, index = await server.raft.apply(msg, encode_payload(req))
        assert isinstance(result, store_variables.VarApplyResult)
        current = result.current.to_api() if result.current else None
        return {"Conflict": result.conflict, "Var": current, "Index": index}

    async def read(args: dict[str, Any]) -> dict[str, Any]:
        namespace = str(args.get("Namespace") or "default")
        path = _check_path(str(args.get("Path") or ""))

        def fn(snap: StateSnapshot) -> Any:
            v = store_variables.get(snap, namespace, path)
            return v.to_api() if v else None

        return await server.blocking_query(args, _TABLES, fn)

    async def list_(args: dict[str, Any]) -> dict[str, Any]:
        namespace = str(args.get("Namespace") or "default")
        prefix = str(args.get("Prefix") or "")

        def fn(snap: StateSnapshot) -> Any:
            found = store_variables.list_prefix(snap, namespace, prefix)
            return [v.to_api(with_items=False) for v in found]

        return await server.blocking_query(args, _TABLES, fn)

    registry.register_legacy("Variables.Apply", apply, kind="write")
    registry.register_legacy("Variables.Read", read, kind="read")
    registry.register_legacy("Variables.List", list_, kind="read")
