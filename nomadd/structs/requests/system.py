"""``System.*`` RPC replies: ``System.GarbageCollect`` (its request is the envelope alone)."""

from __future__ import annotations

from dataclasses import dataclass

from nomadd.structs.requests import Envelope, Method, WriteMeta

__all__ = ["SYSTEM_GARBAGE_COLLECT", "SystemGCReply"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SystemGCReply:
    meta: WriteMeta
    nodes_removed: tuple[str, ...] = ()  # IDs of the nodes the node GC deregistered


SYSTEM_GARBAGE_COLLECT = Method("System.GarbageCollect", Envelope, SystemGCReply)
