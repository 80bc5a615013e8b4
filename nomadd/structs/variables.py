"""Nomad Variables: a namespaced path holding a map of string items (Nomad's ``VariableDecrypted``).

Written only by the FSM (``server/state/store_variables.py``), which stores
:class:`VariableEncrypted` (the items sealed with a root key of the servers' keyring,
``server/keyring.py``): items never appear in Raft entries, journals or snapshots. Servers
decrypt into :class:`Variable` to answer; the HTTP edge shows it as Nomad's JSON with ``to_api``
(``Items`` last) and a listing as :class:`VariableMetadata` (no items).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["Variable", "VariableEncrypted", "VariableMetadata"]


@dataclass(frozen=True, slots=True, kw_only=True)
class VariableMetadata:
    """A variable without its items (what ``GET /v1/vars`` lists)."""

    namespace: str
    path: str
    create_index: int = 0
    modify_index: int = 0
    create_time: int = 0  # unix nanoseconds, made by the endpoint that proposed the write
    modify_time: int = 0

    def metadata(self) -> VariableMetadata:
        return VariableMetadata(
            namespace=self.namespace,
            path=self.path,
            create_index=self.create_index,
            modify_index=self.modify_index,
            create_time=self.create_time,
            modify_time=self.modify_time,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Variable(VariableMetadata):
    """A variable with its items, sorted by key (as the servers decrypt it)."""

    items: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class VariableEncrypted(VariableMetadata):
    """A variable as the state store holds it: ``data`` is ``nonce || AES-256-GCM(items)``
    under the root key ``key_id`` (Nomad's ``VariableEncrypted``)."""

    key_id: str = ""
    data: bytes = b""
