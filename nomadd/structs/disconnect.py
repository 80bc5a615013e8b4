"""A task group's ``disconnect {}`` block (Nomad's DisconnectStrategy) and the legacy
``max_client_disconnect``: what happens to allocations on a node that stops heartbeating.

Without either, a node whose heartbeat expires is ``down`` and its allocations are ``lost`` and
replaced. With ``lost_after`` (or ``max_client_disconnect``) the node is ``disconnected`` for that
long: its allocations are marked client status ``unknown`` (they keep running on the client),
a replacement is placed when ``replace`` is true, and only when the window ends are they ``lost``.
If the node comes back in time, ``reconcile`` picks which of original and replacement stays
(docs/architecture.md, "Disconnected clients"). Durations are in ns.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

__all__ = [
    "RECONCILE_BEST_SCORE",
    "RECONCILE_KEEP_ORIGINAL",
    "RECONCILE_KEEP_REPLACEMENT",
    "RECONCILE_LONGEST_RUNNING",
    "DisconnectStrategy",
    "GroupSettings",
    "group_problems",
    "lost_after_ns",
    "reconcile_rule",
    "replaces",
]

RECONCILE_BEST_SCORE = "best_score"
RECONCILE_KEEP_ORIGINAL = "keep_original"
RECONCILE_KEEP_REPLACEMENT = "keep_replacement"
RECONCILE_LONGEST_RUNNING = "longest_running"
_RECONCILE_RULES = (
    RECONCILE_BEST_SCORE,
    RECONCILE_KEEP_ORIGINAL,
    RECONCILE_KEEP_REPLACEMENT,
    RECONCILE_LONGEST_RUNNING,
)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DisconnectStrategy:
    lost_after: int = 0
    replace: bool = True
    reconcile: str = RECONCILE_BEST_SCORE
    stop_on_client_after: int = 0

    def problems(self) -> list[str]:
        """What is wrong, each naming its field (Nomad's DisconnectStrategy.Validate)."""
        out = []
        if self.lost_after < 0:
            out.append("LostAfter: must be a positive value")
        if self.stop_on_client_after < 0:
            out.append("StopOnClientAfter: must be a positive value")
        if self.lost_after > 0 and self.stop_on_client_after > 0:
            out.append("LostAfter: cannot be set together with StopOnClientAfter")
        if self.reconcile not in _RECONCILE_RULES:
            out.append(f"Reconcile: invalid value {self.reconcile!r} (one of {', '.join(_RECONCILE_RULES)})")
        return out


class GroupSettings(Protocol):
    """What these rules read of a :class:`~nomadd.structs.job.TaskGroup`."""

    @property
    def disconnect(self) -> DisconnectStrategy | None: ...

    @property
    def max_client_disconnect(self) -> int | None: ...


def group_problems(tg: GroupSettings) -> list[str]:
    """The group-level rules: each names its field relative to the group."""
    out = [f"Disconnect.{p}" for p in tg.disconnect.problems()] if tg.disconnect is not None else []
    if tg.disconnect is not None and tg.disconnect.stop_on_client_after > 0:
        out.append("Disconnect.StopOnClientAfter: not supported by nomadd")
    legacy = tg.max_client_disconnect
    if legacy is not None and legacy < 0:
        out.append("MaxClientDisconnect: must be a positive value")
    if legacy is not None and tg.disconnect is not None and tg.disconnect.lost_after > 0:
        out.append("MaxClientDisconnect: using both lost_after and max_client_disconnect is not allowed")
    return out


def lost_after_ns(tg: GroupSettings | None) -> int:
    """How long allocations of ``tg`` stay ``unknown`` on a disconnected node; 0: lost at once."""
    if tg is None:
        return 0
    if tg.disconnect is not None and tg.disconnect.lost_after > 0:
        return tg.disconnect.lost_after
    return max(0, tg.max_client_disconnect or 0)


def replaces(tg: GroupSettings) -> bool:
    """Whether an ``unknown`` allocation of ``tg`` gets a replacement during its window."""
    return tg.disconnect.replace if tg.disconnect is not None else True


def reconcile_rule(tg: GroupSettings) -> str:
    return tg.disconnect.reconcile if tg.disconnect is not None else RECONCILE_BEST_SCORE
