"""``Variables.*`` RPCs (Nomad's variables_endpoint.go): Apply (write), Read, List.

The endpoint validates the request and makes the timestamp (the FSM must not read the clock);
the items are sealed with the servers' root keyring (:mod:`nomadd.server.keyring`) before they
are proposed and opened again to answer, so Raft and snapshots hold them only encrypted;
check-and-set conflicts come back from the FSM as values and are answered as
``VariablesApplyReply(conflict=True, var=<current or None>)``.
"""

from __future__ import annotations

import time

from nomadd.rpc import RPCRegistry
from nomadd.server.context import ServerContext
from nomadd.server.keyring import Keyring
from nomadd.server.state import store_variables
from nomadd.server.state.store import StateSnapshot
from nomadd.server.state.store_variables import VarApplyResult
from nomadd.structs.errors import ValidationError
from nomadd.structs.messages import MessageType
from nomadd.structs.requests import DEFAULT_NAMESPACE, WriteMeta
from nomadd.structs.requests.variables import (
    VARIABLES_APPLY,
    VARIABLES_LIST,
    VARIABLES_READ,
    VarDeleteEntry,
    VariablesApplyReply,
    VariablesApplyRequest,
    VariablesListReply,
    VariablesListRequest,
    VariablesReadReply,
    VariablesReadRequest,
    VarOp,
    VarUpsertEntry,
)
from nomadd.structs.variables import Variable, VariableEncrypted, VariableMetadata

__all__ = ["MAX_PATH_LEN", "VariablesEndpoint"]

MAX_PATH_LEN = 128  # Nomad's variable path limit
_TABLES = (store_variables.TABLE,)


def _check_path(path: str) -> str:
    path = path.strip("/")
    if not path or len(path) > MAX_PATH_LEN:
        raise ValidationError(f"invalid variable path {path!r}: 1-{MAX_PATH_LEN} characters")
    if any(part in ("", ".", "..") for part in path.split("/")):
        raise ValidationError(f"invalid variable path {path!r}: empty or relative segment")
    return path


class VariablesEndpoint:
    def __init__(self, ctx: ServerContext, keyring: Keyring) -> None:
        self._ctx = ctx
        self._keyring = keyring

    def _open(self, var: VariableEncrypted | None) -> Variable | None:
        return None if var is None else self._keyring.open(self._ctx.store.snapshot(), var)

    def register(self, registry: RPCRegistry) -> None:
        registry.register(VARIABLES_APPLY, self.apply, kind="write")
        registry.register(VARIABLES_READ, self.read, kind="read")
        registry.register(VARIABLES_LIST, self.list_vars, kind="read")

    async def apply(self, req: VariablesApplyRequest) -> VariablesApplyReply:
        namespace = req.namespace or DEFAULT_NAMESPACE
        path = _check_path(req.path)
        if req.cas is not None and req.cas < 0:
            raise ValidationError("cas must not be negative")
        entry: VarUpsertEntry | VarDeleteEntry
        if req.op == VarOp.SET:
            if not req.items:
                raise ValidationError("variable items must be a non-empty map of strings")
            key_id, data = await self._keyring.seal(namespace, path, req.items)
            entry = VarUpsertEntry(
                namespace=namespace, path=path, key_id=key_id, data=data, time=time.time_ns(), cas=req.cas
            )
            msg = MessageType.VAR_UPSERT
        else:
            entry = VarDeleteEntry(namespace=namespace, path=path, cas=req.cas)
            msg = MessageType.VAR_DELETE
        result, index = await self._ctx.propose(msg, entry)
        assert isinstance(result, VarApplyResult)
        return VariablesApplyReply(
            meta=WriteMeta(index=index), conflict=result.conflict, var=self._open(result.current)
        )

    async def read(self, req: VariablesReadRequest) -> VariablesReadReply:
        path = _check_path(req.path)

        def fn(snap: StateSnapshot) -> VariableEncrypted | None:
            return store_variables.get(snap, req.namespace, path)

        var, meta = await self._ctx.blocking.query(req, _TABLES, fn)
        return VariablesReadReply(meta=meta, var=self._open(var))

    async def list_vars(self, req: VariablesListRequest) -> VariablesListReply:
        def fn(snap: StateSnapshot) -> tuple[VariableMetadata, ...]:
            return tuple(v.metadata() for v in store_variables.list_prefix(snap, req.namespace, req.prefix))

        found, meta = await self._ctx.blocking.query(req, _TABLES, fn)
        return VariablesListReply(meta=meta, vars=found)
