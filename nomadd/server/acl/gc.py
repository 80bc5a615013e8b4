"""Leader-only garbage collection of expired ACL tokens (Nomad's core ``expiredACLTokenGC``)."""

from __future__ import annotations

import logging
import time

from nomadd.server.context import ServerContext
from nomadd.server.periodic import PeriodicLeaderTask
from nomadd.server.state import store_acl
from nomadd.structs.messages import MessageType
from nomadd.structs.requests.acl import ACLDeleteEntry

logger = logging.getLogger(__name__)

__all__ = ["ACL_TOKEN_GC_INTERVAL_S", "ACLTokenGC"]

ACL_TOKEN_GC_INTERVAL_S = 60.0


class ACLTokenGC(PeriodicLeaderTask):
    """Deletes expired tokens every ``interval_s`` while leading (with ACLs enabled)."""

    name = "acl-token-gc"

    def __init__(self, ctx: ServerContext, interval_s: float = ACL_TOKEN_GC_INTERVAL_S) -> None:
        super().__init__()
        self._ctx = ctx
        self._interval_s = interval_s

    def wanted(self) -> bool:
        return self._ctx.acl.enabled

    def interval_s(self) -> float:
        return self._interval_s

    async def tick(self) -> object:
        return await self.collect()

    async def collect(self) -> list[str]:
        """Delete the expired tokens; in a region that replicates from another (federation),
        only its local ones: global tokens go when the authoritative region collects them
        (as Nomad's GC of global tokens runs there only)."""
        now = time.time_ns()
        cfg = self._ctx.config
        replica = bool(cfg.authoritative_region) and cfg.authoritative_region != cfg.region
        expired = [
            t.accessor_id
            for t in store_acl.list_tokens(self._ctx.store.snapshot())
            if t.expired(now) and not (replica and t.global_)
        ]
        if expired:
            logger.info("acl token gc removing tokens count=%d", len(expired))
            await self._ctx.propose(MessageType.ACL_TOKEN_DELETE, ACLDeleteEntry(keys=tuple(expired)))
        return expired
