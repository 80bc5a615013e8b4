"""Allocation health for deployments, decided by the client (Nomad's ``client/allochealth``).

An allocation that belongs to a deployment (``DeploymentID`` set) and whose group has an
``update {}`` strategy is watched from the moment its tasks are started:

* **healthy** once every main task and sidecar of the group (a prestart or poststart task that
  runs to completion is not judged) has been running, without a restart, for
  ``min_healthy_time`` (``health_check = "task_states"``); with ``health_check = "checks"``
  (the default) and service checks in the group, every check's last run must also have passed
  for that whole time (``client/services.py`` runs them);
* **unhealthy** as soon as a task is dead and failed, or when ``healthy_deadline`` passes
  first.

``health_check = "manual"`` leaves it to the operator (``/v1/deployment/allocation-health``).
The result reaches the servers with the allocation's next status update.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping

from nomadd.structs.alloc import Allocation, TaskState, TaskStatus
from nomadd.structs.deployment import AllocDeploymentStatus
from nomadd.structs.policy import UpdateStrategy
from nomadd.structs.timeutil import format_time

__all__ = ["POLL_S", "HealthTracker", "strategy_of", "unhealthy_now"]

logger = logging.getLogger(__name__)

POLL_S = 0.1  # how often task states are looked at while a decision is pending


def strategy_of(alloc: Allocation) -> UpdateStrategy | None:
    """The update strategy the client must decide health for, or None (nothing to do)."""
    if not alloc.deployment_id or alloc.job is None:
        return None
    if alloc.deployment_status is not None and alloc.deployment_status.healthy is not None:
        return None  # decided already (a restarted agent keeps the servers' verdict)
    tg = alloc.job.lookup_task_group(alloc.task_group)
    if tg is None or tg.update is None or tg.update.health_check == "manual":
        return None
    return tg.update


def unhealthy_now() -> AllocDeploymentStatus:
    return AllocDeploymentStatus(healthy=False, timestamp=format_time(time.time_ns()))


class HealthTracker:
    """Decides one allocation's health from its task states (pure apart from the clock)."""

    def __init__(
        self,
        strategy: UpdateStrategy,
        tasks: tuple[str, ...],
        now_ns: Callable[[], int] = time.time_ns,
        checks: Callable[[], bool | None] | None = None,
    ) -> None:
        self._strategy = strategy
        self._tasks = tasks
        # the group's service checks (None: not judged): None from it means not run yet
        self._checks = checks if strategy.health_check == "checks" else None
        self._now = now_ns
        self._deadline = now_ns() + strategy.healthy_deadline if strategy.healthy_deadline else 0
        self._running_since = 0
        self._restarts: dict[str, int] = {}

    def check(self, states: Mapping[str, TaskState]) -> bool | None:
        """True healthy, False unhealthy, None not decided yet."""
        now = self._now()
        if any(s.state == TaskStatus.DEAD and s.failed for s in states.values()):
            return False
        restarts = {name: s.restarts for name, s in states.items()}
        all_running = bool(self._tasks) and all(
            name in states and states[name].state == TaskStatus.RUNNING for name in self._tasks
        )
        if all_running and self._checks is not None and self._checks() is not True:
            all_running = False  # not healthy until every check passes, for min_healthy_time
        if not all_running or restarts != self._restarts:
            self._running_since = 0
            self._restarts = restarts
        if all_running and not self._running_since:
            self._running_since = now
        if self._running_since and now - self._running_since >= self._strategy.min_healthy_time:
            return True
        if self._deadline and now >= self._deadline:
            return False
        return None

    async def watch(
        self,
        states: Callable[[], Mapping[str, TaskState]],
        decided: Callable[[AllocDeploymentStatus], None],
        alloc_id: str = "",
    ) -> None:
        """Poll ``states`` until a verdict, then hand it to ``decided`` once."""
        while True:
            verdict = self.check(states())
            if verdict is not None:
                logger.info("allocation health alloc_id=%s healthy=%s", alloc_id, str(verdict).lower())
                decided(AllocDeploymentStatus(healthy=verdict, timestamp=format_time(self._now())))
                return
            await asyncio.sleep(POLL_S)
