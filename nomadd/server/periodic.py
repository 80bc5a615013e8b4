"""One shape for the leader's periodic chores (node GC, job GC, token GC, drains, snapshots…).

A :class:`PeriodicLeaderTask` is a :class:`~nomadd.server.leader.LeaderComponent`: while this
server leads it calls :meth:`tick` every :meth:`interval_s` seconds (sleep first, then work, as
Nomad's core scheduler timers do), and stops when leadership goes. A tick that fails with a
:class:`NomaddError` (Raft not leader, timeout…) is logged as a warning and retried next period;
any other exception is a bug and is logged with its traceback, and the chore keeps running — a
GC that stopped silently would let the state grow without anyone noticing.
"""

from __future__ import annotations

import asyncio
import logging

from nomadd.helper.supervisor import Supervisor
from nomadd.structs.errors import NomaddError

logger = logging.getLogger(__name__)

__all__ = ["PeriodicLeaderTask"]


class PeriodicLeaderTask:
    """Subclasses set :attr:`name` and implement :meth:`tick` and :meth:`interval_s`."""

    name = "periodic"

    def __init__(self) -> None:
        self._tasks = Supervisor(self.name)
        self._task: asyncio.Task[None] | None = None

    def interval_s(self) -> float:
        raise NotImplementedError

    async def tick(self) -> object:
        raise NotImplementedError

    def wanted(self) -> bool:
        """Whether the chore runs at all on a leader (e.g. only with ACLs enabled)."""
        return True

    def set_enabled(self, enabled: bool) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if enabled and self.wanted():
            self._task = self._tasks.spawn(self._run(), self.name)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s())
            try:
                await self.tick()
            except NomaddError as err:
                logger.warning("%s failed err=%s", self.name, err)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("%s failed", self.name)

    async def shutdown(self) -> None:
        self._task = None
        await self._tasks.aclose()
