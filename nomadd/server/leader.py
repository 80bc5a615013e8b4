"""Leader duties: barrier on election, leader-only components, membership reconciliation.

``LeaderLoop`` listens to Raft leadership changes (on the loop). On gaining leadership it
commits a barrier (every earlier entry is then applied here), enables the registered
components (``set_enabled(True)``: heartbeat timers, node GC, eval broker... each added by its
module with :meth:`LeaderLoop.register`), then reconciles Raft membership with gossip every
``RECONCILE_INTERVAL_S`` and whenever :meth:`kick` is called (gossip events). On losing it
disables the components. Lost-then-regained leadership runs the whole sequence again; a stale
task from the previous term is cancelled first, so two overlapping terms never run at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from nomadd.helper.supervisor import Supervisor
from nomadd.server.raft import Raft
from nomadd.structs.errors import NomaddError

logger = logging.getLogger(__name__)

__all__ = ["LeaderComponent", "LeaderLoop"]

RECONCILE_INTERVAL_S = 1.0  # cheap (no Raft write unless something differs)
BARRIER_RETRY_S = 0.5


class LeaderComponent(Protocol):
    """Something that runs only on the leader (Nomad's ``SetEnabled`` pattern)."""

    def set_enabled(self, enabled: bool) -> None: ...

    async def shutdown(self) -> None:
        """Stop for good and wait for its tasks (the server is shutting down)."""


class LeaderLoop:
    def __init__(
        self, raft: Raft, reconcile: Callable[[], Awaitable[None]], *, tasks: Supervisor | None = None
    ) -> None:
        self._raft = raft
        self._reconcile = reconcile
        self._components: list[LeaderComponent] = []
        self._tasks = tasks or Supervisor("leader")
        self._task: asyncio.Task[None] | None = None
        self._kick = asyncio.Event()
        self.established = False  # barrier done and components enabled in this term
        raft.add_leadership_listener(self._on_leadership)

    def register(self, component: LeaderComponent) -> None:
        """Add a leader-only component; enabled at once if leadership is already established."""
        self._components.append(component)
        if self.established:
            component.set_enabled(True)

    def kick(self) -> None:
        """Reconcile soon (a gossip member changed)."""
        self._kick.set()

    def restart(self) -> None:
        """Run the leadership sequence again on the leader (the state was replaced by a
        snapshot restore: components rebuild from it)."""
        if not self._raft.is_leader():
            return
        logger.info("re-establishing leadership after a state restore")
        self._stop_task()
        self._set_components(False)
        self._task = self._tasks.spawn(self._run(), "leader-loop", vital=True)

    def _on_leadership(self, is_leader: bool) -> None:
        if is_leader:
            logger.info("cluster leadership acquired")
            self._stop_task()
            # Vital: a leader whose loop died never enables scheduling, heartbeat timers or GC
            # (or stops reconciling membership) while it keeps the leadership: the cluster wedges.
            self._task = self._tasks.spawn(self._run(), "leader-loop", vital=True)
        else:
            if self._task is not None or self.established:
                logger.info("cluster leadership lost")
            self._stop_task()
            self._set_components(False)

    def _stop_task(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def _set_components(self, enabled: bool) -> None:
        if not enabled and not self.established:
            return
        self.established = enabled
        for c in self._components:
            try:
                c.set_enabled(enabled)
            except Exception:
                logger.exception("leader component set_enabled failed enabled=%s", enabled)

    async def _run(self) -> None:
        while True:
            try:
                index = await self._raft.barrier()
                logger.debug("leader barrier committed index=%d", index)
                break
            except NomaddError as err:
                logger.warning("leader barrier failed err=%s", err)
                if not self._raft.is_leader():
                    return
                await asyncio.sleep(BARRIER_RETRY_S)
        self._set_components(True)
        while self._raft.is_leader():
            try:
                await self._reconcile()
            except NomaddError as err:
                logger.warning("membership reconcile failed err=%s", err)
            except Exception:
                logger.exception("membership reconcile crashed")
            self._kick.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), RECONCILE_INTERVAL_S)

    async def shutdown(self) -> None:
        self._task = None
        await self._tasks.aclose()
        self._set_components(False)
        for c in self._components:
            await c.shutdown()
