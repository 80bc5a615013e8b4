"""Nomad Variables: a namespaced path holding a map of string items (Nomad's ``VariableDecrypted``).

Written only by the FSM (``server/state/store_variables.py``); the HTTP edge shows a
:class:`Variable` as Nomad's JSON with ``to_api`` (``Items`` last) and a listing as
:class:`VariableMetadata` (no items).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["Variable", "VariableMetadata"]


@dataclass(frozen=True, slots=True, kw_only=True)
class VariableMetadata:
    """A variable without its items (what ``GET /v1/vars`` lists)."""

    namespace: str
    path: str
    create_index: int = 0
    modify_index: int = 0
    create_time: int = 0  # unix nanoseconds, made by the endpoint that proposed the write
    modify_time: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Variable(VariableMetadata):
    """A variable with its items, sorted by key (the FSM stores them so)."""

    items: Mapping[str, str] = field(default_factory=dict)

    def metadata(self) -> VariableMetadata:
        return VariableMetadata(
            namespace=self.namespace,
            path=self.path,
            create_index=self.create_index,
            modify_index=self.modify_index,
            create_time=self.create_time,
            modify_time=self.modify_time,
        )
