"""Leader-only garbage collection of expired ACL tokens (Nomad's core ``expiredACLTokenGC``)."""

from __future__ import annotations

import asyncio
import logging
import time

from nomadd.helper.supervisor import Supervisor
from nomadd.server.context import ServerContext
from nomadd.server.state import store_acl
from nomadd.structs.errors import NomaddError
from nomadd.structs.messages import MessageType
from nomadd.structs.requests.acl import ACLDeleteEntry

logger = logging.getLogger(__name__)

__all__ = ["ACL_TOKEN_GC_INTERVAL_S", "ACLTokenGC"]

ACL_TOKEN_GC_INTERVAL_S = 60.0


class ACLTokenGC:
    """A :class:`LeaderComponent`: deletes expired tokens every ``interval_s`` while leading."""

    def __init__(self, ctx: ServerContext, interval_s: float = ACL_TOKEN_GC_INTERVAL_S) -> None:
        self._ctx = ctx
        self._interval_s = interval_s
        self._tasks = Supervisor("acl-token-gc")
        self._task: asyncio.Task[None] | None = None

    def set_enabled(self, enabled: bool) -> None:
        if enabled and self._task is None and self._ctx.acl.enabled:
            self._task = self._tasks.spawn(self._run(), "acl-token-gc")
        elif not enabled and self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.collect()
            except NomaddError as err:
                logger.warning("acl token gc failed err=%s", err)

    async def collect(self) -> list[str]:
        now = time.time_ns()
        expired = [t.accessor_id for t in store_acl.list_tokens(self._ctx.store.snapshot()) if t.expired(now)]
        if expired:
            logger.info("acl token gc removing tokens count=%d", len(expired))
            await self._ctx.propose(MessageType.ACL_TOKEN_DELETE, ACLDeleteEntry(keys=tuple(expired)))
        return expired

    async def shutdown(self) -> None:
        self._task = None
        await self._tasks.aclose()
