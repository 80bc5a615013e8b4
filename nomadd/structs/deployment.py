"""Deployments: the rollout of one job version under its groups' ``update {}`` (Nomad's
``structs.Deployment``), and the deployment part of an allocation (``DeploymentStatus``).

A deployment is created by the scheduler when a service job's group with an update strategy
gets a new version (or its first one); the plan applier commits it with the allocations.
Counters of each group (placed, healthy, unhealthy) move in the FSM as allocations are placed
and as clients report their health; the leader's deployment watcher
(``server/deployment_watcher.py``) decides success, failure, promotion and auto-revert.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import field
from enum import StrEnum
from typing import ClassVar

from nomadd.structs.timeutil import ZERO_TIME

__all__ = [
    "DESC_FAILED_ALLOCS",
    "DESC_FAILED_BY_USER",
    "DESC_NEEDS_PROMOTION",
    "DESC_NEWER_JOB",
    "DESC_PAUSED",
    "DESC_PROGRESS_DEADLINE",
    "DESC_RUNNING",
    "DESC_STOPPED_JOB",
    "DESC_SUCCESSFUL",
    "AllocDeploymentStatus",
    "Deployment",
    "DeploymentState",
    "DeploymentStatus",
    "DeploymentStatusUpdate",
]


class DeploymentStatus(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    FAILED = "failed"
    SUCCESSFUL = "successful"
    CANCELLED = "cancelled"


# Nomad's DeploymentStatusDescription* texts
DESC_RUNNING = "Deployment is running"
DESC_NEEDS_PROMOTION = "Deployment is running but requires manual promotion"
DESC_PAUSED = "Deployment is paused"
DESC_SUCCESSFUL = "Deployment completed successfully"
DESC_STOPPED_JOB = "Cancelled because job is stopped"
DESC_NEWER_JOB = "Cancelled due to newer version of job"
DESC_FAILED_ALLOCS = "Failed due to unhealthy allocations"
DESC_PROGRESS_DEADLINE = "Failed due to progress deadline"
DESC_FAILED_BY_USER = "Deployment marked as failed"

_ACTIVE = frozenset({DeploymentStatus.RUNNING, DeploymentStatus.PAUSED})


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class AllocDeploymentStatus:
    """An allocation's health within its deployment; ``healthy`` None: not decided yet."""

    healthy: bool | None = None
    timestamp: str = ZERO_TIME  # RFC 3339, when the health was decided
    canary: bool = False
    modify_index: int = 0

    def is_healthy(self) -> bool:
        return self.healthy is True

    def is_unhealthy(self) -> bool:
        return self.healthy is False


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DeploymentState:
    """One task group's progress in a deployment (Nomad's ``DeploymentState``)."""

    auto_revert: bool = False
    auto_promote: bool = False
    progress_deadline: int = 0  # ns
    require_progress_by: str = ZERO_TIME  # RFC 3339
    promoted: bool = False
    placed_canaries: tuple[str, ...] = ()  # allocation IDs
    desired_canaries: int = 0
    desired_total: int = 0
    placed_allocs: int = 0
    healthy_allocs: int = 0
    unhealthy_allocs: int = 0


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Deployment:
    # Nomad's api.Deployment keys nomadd has no field for, sent at their zero value (codec.to_api)
    NOMAD_ONLY: ClassVar[Mapping[str, object]] = {"IsMultiregion": False}

    id: str = ""
    namespace: str = "default"
    job_id: str = ""
    job_version: int = 0
    job_modify_index: int = 0
    job_spec_modify_index: int = 0
    job_create_index: int = 0
    task_groups: Mapping[str, DeploymentState] = field(default_factory=dict)
    status: DeploymentStatus = DeploymentStatus.RUNNING
    status_description: str = DESC_RUNNING
    eval_priority: int = 50
    create_index: int = 0
    modify_index: int = 0
    create_time: int = 0  # Unix ns
    modify_time: int = 0  # Unix ns

    def active(self) -> bool:
        """Running or paused (Nomad's ``Active``)."""
        return self.status in _ACTIVE

    def requires_promotion(self) -> bool:
        return any(s.desired_canaries > 0 and not s.promoted for s in self.task_groups.values())

    def has_auto_promote(self) -> bool:
        groups = [s for s in self.task_groups.values() if s.desired_canaries > 0]
        return bool(groups) and all(s.auto_promote for s in groups)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DeploymentStatusUpdate:
    """A deployment's new status (a plan cancelling an older one; the watcher; an operator)."""

    deployment_id: str
    status: DeploymentStatus
    status_description: str = ""
    updated_at: int = 0  # Unix ns, the deployment's new ModifyTime (Nomad's UpdatedAt); 0: the entry's
