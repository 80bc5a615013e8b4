"""``System.*`` RPCs (Nomad's system_endpoint.go): ``System.GarbageCollect`` (force GC now).

Nomad's force-gc runs every GC kind with a 1 ms threshold; nomadd collects nodes here (job and
eval GC run as core jobs, which hook in with :func:`add_gc_hook`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from nomadd.server.node_gc import FORCE_GC_THRESHOLD_S, NodeGC

if TYPE_CHECKING:
    from nomadd.rpc import RPCRegistry
    from nomadd.server.server import Server

logger = logging.getLogger(__name__)

__all__ = ["GCHook", "add_gc_hook", "register"]

GCHook = Callable[["Server"], Awaitable[None]]
_GC_HOOKS: list[GCHook] = []


def add_gc_hook(fn: GCHook) -> None:
    """Run ``fn(server)`` on the leader before node GC when a forced GC is asked for."""
    if fn not in _GC_HOOKS:
        _GC_HOOKS.append(fn)


def register(server: Server, registry: RPCRegistry) -> None:
    gc = NodeGC(server)
    server.register_leader_component(gc)

    async def garbage_collect(args: dict[str, Any]) -> dict[str, Any]:
        for hook in list(_GC_HOOKS):
            await hook(server)
        removed = await gc.collect(FORCE_GC_THRESHOLD_S)  # node GC last, as Nomad
        return {"NodesRemoved": removed}

    registry.register_legacy("System.GarbageCollect", garbage_collect, kind="write")
