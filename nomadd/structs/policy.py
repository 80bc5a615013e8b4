"""Restart, reschedule and update policies with Nomad's per-job-type defaults."""

from __future__ import annotations

import dataclasses
from enum import StrEnum

from nomadd.structs.timeutil import NS_PER_HOUR, NS_PER_MINUTE, NS_PER_S

__all__ = [
    "ReschedulePolicy",
    "RestartMode",
    "RestartPolicy",
    "UpdateStrategy",
    "default_reschedule_policy",
    "default_restart_policy",
]


class RestartMode(StrEnum):
    FAIL = "fail"
    DELAY = "delay"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RestartPolicy:
    """Restarts in place on the same client. Durations in ns. Default: service's."""

    attempts: int = 2
    interval: int = 30 * NS_PER_MINUTE
    delay: int = 15 * NS_PER_S
    mode: RestartMode = RestartMode.FAIL
    render_templates: bool = False


_BATCH_RESTART = RestartPolicy(attempts=3, interval=24 * NS_PER_HOUR, delay=15 * NS_PER_S)


def default_restart_policy(job_type: str) -> RestartPolicy:
    """Nomad's NewRestartPolicy: batch and sysbatch differ; service and system share a default."""
    return _BATCH_RESTART if job_type in ("batch", "sysbatch") else RestartPolicy()


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ReschedulePolicy:
    """Replacement of failed allocations on another node. Durations in ns. Default: service's."""

    attempts: int = 0
    interval: int = 0
    delay: int = 30 * NS_PER_S
    delay_function: str = "exponential"  # constant | exponential | fibonacci
    max_delay: int = NS_PER_HOUR
    unlimited: bool = True


_BATCH_RESCHEDULE = ReschedulePolicy(
    attempts=1,
    interval=24 * NS_PER_HOUR,
    delay=5 * NS_PER_S,
    delay_function="constant",
    max_delay=0,
    unlimited=False,
)


def default_reschedule_policy(job_type: str) -> ReschedulePolicy | None:
    """Nomad's NewReschedulePolicy: none for system jobs."""
    if job_type == "batch":
        return _BATCH_RESCHEDULE
    if job_type == "service":
        return ReschedulePolicy()
    return None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class UpdateStrategy:
    """Rolling-update settings (durations in ns); Nomad's DefaultUpdateStrategy values."""

    stagger: int = 30 * NS_PER_S
    max_parallel: int = 1
    health_check: str = "checks"
    min_healthy_time: int = 10 * NS_PER_S
    healthy_deadline: int = 5 * NS_PER_MINUTE
    progress_deadline: int = 10 * NS_PER_MINUTE
    auto_revert: bool = False
    auto_promote: bool = False
    canary: int = 0

    def problems(self) -> list[str]:
        out = []
        if self.max_parallel < 0:
            out.append("MaxParallel: must be >= 0")
        if self.canary < 0:
            out.append("Canary: must be >= 0")
        for name, value in (
            ("Stagger", self.stagger),
            ("MinHealthyTime", self.min_healthy_time),
            ("HealthyDeadline", self.healthy_deadline),
            ("ProgressDeadline", self.progress_deadline),
        ):
            if value < 0:
                out.append(f"{name}: duration must be >= 0")
        if self.health_check not in ("checks", "task_states", "manual"):
            out.append(f"HealthCheck: invalid value {self.health_check!r}")
        return out
