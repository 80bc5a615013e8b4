"""``Variables.*`` RPC requests and replies, and the variable entries of the Raft log."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from nomadd.structs.requests import Envelope, Method, QueryMeta, WriteMeta
from nomadd.structs.variables import Variable, VariableMetadata

__all__ = [
    "VARIABLES_APPLY",
    "VARIABLES_LIST",
    "VARIABLES_READ",
    "VarDeleteEntry",
    "VarOp",
    "VarUpsertEntry",
    "VariablesApplyReply",
    "VariablesApplyRequest",
    "VariablesListReply",
    "VariablesListRequest",
    "VariablesReadReply",
    "VariablesReadRequest",
]


class VarOp(enum.StrEnum):
    SET = "set"
    DELETE = "delete"


# ---- requests ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class VariablesApplyRequest(Envelope):
    """Set or delete the variable at ``path`` in the envelope's namespace.

    ``cas``: ``None`` writes unconditionally, ``0`` only if the variable does not exist, ``N``
    only if its ModifyIndex is ``N`` (Nomad's check-and-set).
    """

    op: VarOp
    path: str
    items: Mapping[str, str] = field(default_factory=dict)
    cas: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class VariablesReadRequest(Envelope):
    path: str


@dataclass(frozen=True, slots=True, kw_only=True)
class VariablesListRequest(Envelope):
    """The variables of the envelope's namespace (``*``: all) whose path starts with ``prefix``."""

    prefix: str = ""


# ---- replies -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class VariablesApplyReply:
    """``conflict``: the check-and-set failed and nothing changed; ``var`` is then the current
    variable (``None`` when it does not exist). Otherwise ``var`` is what was written (``None``
    after a delete)."""

    meta: WriteMeta
    conflict: bool = False
    var: Variable | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class VariablesReadReply:
    meta: QueryMeta
    var: Variable | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class VariablesListReply:
    meta: QueryMeta
    vars: tuple[VariableMetadata, ...] = ()


# ---- Raft entries --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class VarUpsertEntry:
    """``VAR_UPSERT``: ``time`` (unix ns) is made by the endpoint, the FSM never reads the clock.

    The items travel sealed (``data``, under root key ``key_id``): the endpoint encrypts them
    before proposing, so no Raft entry holds them in the clear."""

    namespace: str
    path: str
    key_id: str = ""
    data: bytes = b""
    time: int = 0
    cas: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class VarDeleteEntry:
    """``VAR_DELETE``."""

    namespace: str
    path: str
    cas: int | None = None


# ---- methods -------------------------------------------------------------------------------

VARIABLES_APPLY = Method("Variables.Apply", VariablesApplyRequest, VariablesApplyReply)
VARIABLES_READ = Method("Variables.Read", VariablesReadRequest, VariablesReadReply)
VARIABLES_LIST = Method("Variables.List", VariablesListRequest, VariablesListReply)
