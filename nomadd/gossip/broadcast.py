"""The queue of updates waiting to be piggy-backed (memberlist's TransmitLimitedQueue).

Each update is sent at most ``retransmit_mult * ceil(log10(n + 1))`` times, least-sent first,
newest first among equals; a newer update about the same member replaces the queued one.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

__all__ = ["BroadcastQueue", "retransmit_limit"]

MAX_QUEUED_BROADCASTS = 4096  # bound memory if a flood of distinct names arrives


def retransmit_limit(mult: int, members: int) -> int:
    return mult * max(1, math.ceil(math.log10(members + 1)))


@dataclass(slots=True)
class _Broadcast:
    key: str
    data: bytes
    transmits: int
    order: int


class BroadcastQueue:
    __slots__ = ("_counter", "_items", "_mult")

    def __init__(self, retransmit_mult: int) -> None:
        self._mult = retransmit_mult
        self._items: dict[str, _Broadcast] = {}
        self._counter = itertools.count()

    def __len__(self) -> int:
        return len(self._items)

    def queue(self, key: str, data: bytes) -> None:
        """Queue ``data``; it replaces any queued update with the same ``key``."""
        self._items.pop(key, None)
        if len(self._items) >= MAX_QUEUED_BROADCASTS:
            oldest = min(self._items.values(), key=lambda b: b.order)
            del self._items[oldest.key]
        self._items[key] = _Broadcast(key=key, data=data, transmits=0, order=next(self._counter))

    def get(self, budget_bytes: int, max_items: int, members: int) -> list[bytes]:
        """Take up to ``max_items`` updates fitting in ``budget_bytes``; count their transmits."""
        limit = retransmit_limit(self._mult, members)
        out: list[bytes] = []
        used = 0
        for item in sorted(self._items.values(), key=lambda b: (b.transmits, -b.order)):
            if len(out) >= max_items:
                break
            size = len(item.data)
            if used + size > budget_bytes:
                continue
            used += size
            out.append(item.data)
            item.transmits += 1
            if item.transmits >= limit:
                del self._items[item.key]
        return out

    def clear(self) -> None:
        self._items.clear()
