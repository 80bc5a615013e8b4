"""A task group's ``migrate {}`` block (Nomad's MigrateStrategy): how a node drain moves it.

The leader's drainer (:mod:`nomadd.server.drainer`) marks at most ``max_parallel`` of a group's
allocations on draining nodes for migration at a time, and marks more only as their replacements
become healthy: every task running for ``min_healthy_time`` (``health_check``: ``task_states``;
``checks`` means the same while nomadd has no service checks), judged unhealthy after
``healthy_deadline``. Service jobs get :data:`DEFAULT_MIGRATE` when they set none; batch and
system jobs may not set one (Nomad's rule: they are drained by their deadline, not by health).
"""

from __future__ import annotations

import dataclasses

from nomadd.structs.timeutil import NS_PER_MINUTE, NS_PER_S

__all__ = ["DEFAULT_MIGRATE", "HEALTH_CHECKS", "HEALTH_TASK_STATES", "MigrateStrategy"]

HEALTH_CHECKS = "checks"
HEALTH_TASK_STATES = "task_states"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class MigrateStrategy:
    """Durations in ns; defaults are Nomad's DefaultMigrateStrategy."""

    max_parallel: int = 1
    health_check: str = HEALTH_CHECKS
    min_healthy_time: int = 10 * NS_PER_S
    healthy_deadline: int = 5 * NS_PER_MINUTE

    def problems(self) -> list[str]:
        """What is wrong, each naming its field (Nomad's MigrateStrategy.Validate)."""
        out = []
        if self.max_parallel < 0:
            out.append(f"MaxParallel: must be >= 0 but found {self.max_parallel}")
        known = self.health_check in (HEALTH_CHECKS, HEALTH_TASK_STATES)
        if not known and (self.health_check or self.max_parallel > 0):
            what = "missing" if not self.health_check else f"invalid value {self.health_check!r}"
            out.append(f"HealthCheck: {what} (checks or task_states)")
        if self.min_healthy_time < 0:
            out.append("MinHealthyTime: duration must be >= 0")
        if self.healthy_deadline < 0:
            out.append("HealthyDeadline: duration must be >= 0")
        if self.min_healthy_time > self.healthy_deadline:
            out.append("MinHealthyTime: must be less than HealthyDeadline")
        return out


DEFAULT_MIGRATE = MigrateStrategy()
