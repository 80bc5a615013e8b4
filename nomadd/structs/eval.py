"""Evaluations: a request to reconcile one job's desired and actual state."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import field
from enum import StrEnum
from typing import ClassVar

from nomadd.structs.alloc import AllocMetric
from nomadd.structs.codec import api
from nomadd.structs.timeutil import ZERO_TIME

__all__ = [
    "CORE_JOB_TYPE",
    "EvalStatus",
    "EvalTrigger",
    "Evaluation",
]

CORE_JOB_TYPE = "_core"  # Evaluation.type of the leader's GC evals (node-gc, force-gc...)


class EvalStatus(StrEnum):
    PENDING = "pending"
    COMPLETE = "complete"
    FAILED = "failed"
    BLOCKED = "blocked"
    CANCELED = "canceled"


_TERMINAL = frozenset({EvalStatus.COMPLETE, EvalStatus.FAILED, EvalStatus.CANCELED})


class EvalTrigger(StrEnum):
    JOB_REGISTER = "job-register"
    JOB_DEREGISTER = "job-deregister"
    PERIODIC_JOB = "periodic-job"
    NODE_UPDATE = "node-update"
    NODE_DRAIN = "node-drain"
    ALLOC_STOP = "alloc-stop"
    ALLOC_FAILURE = "alloc-failure"
    QUEUED_ALLOCS = "queued-allocs"
    FAILED_FOLLOW_UP = "failed-follow-up"
    MAX_PLANS = "max-plan-attempts"
    JOB_SCALING = "job-scaling"
    DEPLOYMENT_WATCHER = "deployment-watcher"
    ROLLING_UPDATE = "rolling-update"
    PREEMPTION = "preemption"
    RECONNECT = "reconnect"
    MAX_DISCONNECT_TIMEOUT = "max-disconnect-timeout"
    SCHEDULED = "scheduled"
    NODE_GC = "node-gc"
    FORCE_GC = "force-gc"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Evaluation:
    # Nomad's api.Evaluation keys nomadd has no field for, sent at their zero value (codec.to_api)
    NOMAD_ONLY: ClassVar[Mapping[str, object]] = {
        "RelatedEvals": None,
        "PlanAnnotations": None,
        "MissingNonNodeResources": None,
    }

    id: str = ""
    namespace: str = "default"
    priority: int = 50
    type: str = ""  # the job's type, or CORE_JOB_TYPE
    triggered_by: EvalTrigger = EvalTrigger.JOB_REGISTER
    job_id: str = ""
    job_modify_index: int = 0
    node_id: str = ""
    node_modify_index: int = 0
    deployment_id: str = ""
    status: EvalStatus = EvalStatus.PENDING
    status_description: str = ""
    wait: int = 0  # ns
    wait_until: str = ZERO_TIME  # RFC 3339; Go's zero time when unset
    next_eval: str = ""
    previous_eval: str = ""
    blocked_eval: str = ""
    failed_tg_allocs: Mapping[str, AllocMetric] = field(default_factory=dict)
    class_eligibility: Mapping[str, bool] = field(default_factory=dict)
    escaped_computed_class: bool = False
    quota_limit_reached: str = ""
    annotate_plan: bool = False
    queued_allocations: Mapping[str, int] = field(default_factory=dict)
    leader_ack: str = field(default="", metadata=api("LeaderACK"))
    snapshot_index: int = 0
    create_index: int = 0
    modify_index: int = 0
    create_time: int = 0  # Unix ns
    modify_time: int = 0  # Unix ns

    def terminal(self) -> bool:
        return self.status in _TERMINAL

    def should_enqueue(self) -> bool:
        """Pending evals go to the eval broker (blocked ones to the blocked-evals tracker)."""
        return self.status == EvalStatus.PENDING

    def should_block(self) -> bool:
        return self.status == EvalStatus.BLOCKED
