"""``System.*`` RPCs (Nomad's system_endpoint.go): ``System.GarbageCollect`` (force GC now).

Nomad's force-gc runs every GC kind with a 1 ms threshold: here the eval/alloc/job GC with zero
thresholds, then the node GC (last, as Nomad). The server builds both collectors and hands them
to the endpoint; they are also its periodic leader components.
"""

from __future__ import annotations

from nomadd.rpc import RPCRegistry
from nomadd.server.context import ServerContext
from nomadd.server.job_gc import JobGC
from nomadd.server.node_gc import FORCE_GC_THRESHOLD_S, NodeGC
from nomadd.structs.requests import Envelope, WriteMeta
from nomadd.structs.requests.system import SYSTEM_GARBAGE_COLLECT, SystemGCReply

__all__ = ["SystemEndpoint"]


class SystemEndpoint:
    def __init__(self, ctx: ServerContext, *, job_gc: JobGC, node_gc: NodeGC) -> None:
        self._ctx = ctx
        self._job_gc = job_gc
        self._node_gc = node_gc

    def register(self, registry: RPCRegistry) -> None:
        registry.register(SYSTEM_GARBAGE_COLLECT, self.garbage_collect, kind="write")

    async def garbage_collect(self, req: Envelope) -> SystemGCReply:
        await self._job_gc.collect(0.0, 0.0)
        removed = await self._node_gc.collect(FORCE_GC_THRESHOLD_S)
        return SystemGCReply(
            meta=WriteMeta(index=self._ctx.raft.applied_index()), nodes_removed=tuple(removed)
        )
