"""FSM case of ``AUTOPILOT_SET_CONFIG`` and the ``autopilot`` table (one row: the config)."""

from __future__ import annotations

import dataclasses
from typing import Any

from nomadd.server.state.store import StateSnapshot, Txn, register_table
from nomadd.structs.codec import from_wire, to_wire
from nomadd.structs.requests.autopilot import AutopilotConfig, AutopilotSetConfigEntry

__all__ = ["TABLE", "apply_set_config", "get_config"]

TABLE = "autopilot"
_KEY = "config"


def _decode(value: Any) -> AutopilotConfig:
    return from_wire(AutopilotConfig, value)


register_table(TABLE, to_wire, _decode)


def get_config(snap: StateSnapshot | Txn) -> AutopilotConfig | None:
    value = snap.get(TABLE, _KEY)
    return value if isinstance(value, AutopilotConfig) else None


def apply_set_config(txn: Txn, entry: AutopilotSetConfigEntry) -> bool:
    """Store ``entry.config``; False (nothing changed) when its check-and-set fails."""
    current = get_config(txn)
    if entry.cas and (current.modify_index if current is not None else 0) != entry.cas_index:
        return False
    create = current.create_index if current is not None else txn.index
    txn.put(TABLE, _KEY, dataclasses.replace(entry.config, create_index=create, modify_index=txn.index))
    return True
