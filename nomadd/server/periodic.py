"""``PeriodicLeaderTask``: a leader component that runs one step every ``interval`` seconds while
this server leads (the pattern node GC, job GC and the drainer each write out by hand)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from nomadd.helper.supervisor import Supervisor
from nomadd.structs.errors import NomaddError

logger = logging.getLogger(__name__)

__all__ = ["PeriodicLeaderTask"]


class PeriodicLeaderTask:
    """A :class:`~nomadd.server.leader.LeaderComponent`: ``step`` runs at once when leadership
    is established, then every ``interval`` seconds, until leadership is lost. A failing step
    (``NomaddError``) is logged and retried at the next interval; it never stops the task."""

    def __init__(
        self, name: str, interval: Callable[[], float], step: Callable[[], Awaitable[object]]
    ) -> None:
        self.name = name
        self._interval = interval
        self._step = step
        self._tasks = Supervisor(name)
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    def set_enabled(self, enabled: bool) -> None:
        if enabled and self._task is None:
            self._task = self._tasks.spawn(self._run(), self.name)
        elif not enabled and self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        last_error = ""
        while True:
            try:
                await self._step()
                if last_error:
                    logger.info("leader task recovered task=%s", self.name)
                last_error = ""
            except NomaddError as err:
                if str(err) != last_error:  # one line per new error, not one per interval
                    logger.warning("leader task failed task=%s err=%s", self.name, err)
                last_error = str(err)
            await asyncio.sleep(self._interval())

    async def shutdown(self) -> None:
        self._task = None
        await self._tasks.aclose()
