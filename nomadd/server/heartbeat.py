"""Leader-only heartbeat TTL timers (Nomad's ``nomad/heartbeat.go``).

Heartbeats never go through Raft: only the leader keeps one timer per node, in memory. A
heartbeat (``Node.Register`` or ``Node.UpdateStatus``) resets the node's timer to
``ttl + heartbeat_grace`` and answers ``ttl``, where (``helper/cluster.go``)::

    base = max(min_heartbeat_ttl, active_timers / max_heartbeats_per_second)
    ttl  = base + uniform[0, base)

so the whole cluster's heartbeat rate stays under ``max_heartbeats_per_second``. When a timer
fires, ``invalidate(node_id)`` marks the node down (a Raft write, done by the node endpoint), or
``disconnected`` first when it runs allocations of groups with ``disconnect {}``: then the timer is
armed again for the longest such window, and the node is down when it fires.

On winning an election (``set_enabled(True)``, after the leader barrier) every node that is not
down gets ``failover_heartbeat_ttl``, giving clients time to find the new leader; losing
leadership clears every timer.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Iterable

from nomadd.helper.supervisor import Supervisor
from nomadd.structs.errors import NoLeaderError

logger = logging.getLogger(__name__)

__all__ = ["HeartbeatTimers", "TTLSettings", "heartbeat_ttl", "rate_scaled_interval"]

# Nomad's RateScaledInterval: a rate this low (or lower) means "no scaling".
MIN_RATE_PER_S = 1.0 / 86400.0


def rate_scaled_interval(rate: float, minimum: float, n: int) -> float:
    """``max(minimum, n / rate)`` seconds (Nomad's ``helper.RateScaledInterval``)."""
    if rate <= MIN_RATE_PER_S:
        return minimum
    return max(minimum, n / rate)


def heartbeat_ttl(n: int, min_ttl: float, rate: float, rng: random.Random | None = None) -> float:
    """The TTL handed to a client when ``n`` timers are active: ``base + uniform[0, base)``."""
    base = rate_scaled_interval(rate, min_ttl, n)
    r = rng.random() if rng is not None else random.random()
    return base + r * base


class TTLSettings:
    """The server's heartbeat knobs, read through a callable so a reload takes effect."""

    __slots__ = ("failover_ttl", "grace", "min_ttl", "rate")

    def __init__(self, *, min_ttl: float, rate: float, grace: float, failover_ttl: float) -> None:
        self.min_ttl = min_ttl
        self.rate = rate
        self.grace = grace
        self.failover_ttl = failover_ttl


class HeartbeatTimers:
    """Per-node TTL timers on the leader; a :class:`LeaderComponent`.

    ``settings()`` returns the current :class:`TTLSettings`; ``live_nodes()`` the IDs of nodes
    that are not down (used on election); ``invalidate(node_id)`` marks a node down.
    """

    def __init__(
        self,
        *,
        settings: Callable[[], TTLSettings],
        live_nodes: Callable[[], Iterable[str]],
        invalidate: Callable[[str], Awaitable[None]],
    ) -> None:
        self._settings = settings
        self._live_nodes = live_nodes
        self._invalidate = invalidate
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks = Supervisor("heartbeat-timers")
        self._enabled = False
        self.heartbeats = 0  # resets served since start (for stats and the benchmark)
        self.expired = 0

    @property
    def enabled(self) -> bool:
        return self._enabled

    def active(self) -> int:
        return len(self._timers)

    def set_enabled(self, enabled: bool) -> None:
        if enabled == self._enabled:
            return
        self._enabled = enabled
        self._clear_all()
        if enabled:
            failover = self._settings().failover_ttl
            n = 0
            for node_id in self._live_nodes():
                self._arm(node_id, failover)
                n += 1
            logger.info("heartbeat timers initialized nodes=%d failover_ttl=%.0fs", n, failover)
        else:
            self._tasks.cancel_all()

    def reset(self, node_id: str) -> float:
        """Restart ``node_id``'s timer; returns the TTL to give the client (without grace)."""
        if not self._enabled:
            raise NoLeaderError("failed to reset heartbeat since server is not leader")
        s = self._settings()
        ttl = heartbeat_ttl(len(self._timers), s.min_ttl, s.rate)
        self._arm(node_id, ttl + s.grace)
        self.heartbeats += 1
        return ttl

    def arm(self, node_id: str, delay_s: float) -> None:
        """Fire ``invalidate`` for ``node_id`` after ``delay_s`` (a disconnected node's window)."""
        if self._enabled:
            self._arm(node_id, delay_s)

    def clear(self, node_id: str) -> None:
        handle = self._timers.pop(node_id, None)
        if handle is not None:
            handle.cancel()

    def _arm(self, node_id: str, delay: float) -> None:
        self.clear(node_id)
        loop = asyncio.get_running_loop()
        self._timers[node_id] = loop.call_later(delay, self._expire, node_id)

    def _expire(self, node_id: str) -> None:
        self._timers.pop(node_id, None)
        if not self._enabled:
            return
        self.expired += 1
        logger.warning("node TTL expired node_id=%s", node_id)
        self._tasks.spawn(self._run_invalidate(node_id), f"heartbeat-invalidate-{node_id}")

    async def _run_invalidate(self, node_id: str) -> None:
        try:
            await self._invalidate(node_id)
        except asyncio.CancelledError:
            raise
        except Exception as err:
            # Nomad re-arms nothing here either; the next election re-initialises timers.
            logger.error("update node status failed after ttl expiry node_id=%s err=%r", node_id, err)

    def _clear_all(self) -> None:
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()

    async def shutdown(self) -> None:
        self._enabled = False
        self._clear_all()
        await self._tasks.aclose()
