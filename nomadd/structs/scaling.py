"""Scaling: a task group's ``scaling {}`` policy and the events of ``job scale`` (Nomad's
ScalingPolicy and JobScalingEvent)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import field

from nomadd.structs.codec import api

__all__ = ["TRACKED_SCALING_EVENTS", "JobScalingEvent", "JobScalingEvents", "ScalingPolicy"]

TRACKED_SCALING_EVENTS = 20  # Nomad's JobTrackedScalingEvents: newest events kept per group


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ScalingPolicy:
    """A group's ``scaling {}`` block: the count's bounds and the autoscaler's free-form policy.
    ``id`` and the target are filled by the servers (Nomad's canonicalization)."""

    id: str = field(default="", metadata=api("ID"))
    type: str = "horizontal"
    min: int | None = None
    max: int | None = None
    enabled: bool = True
    policy: Mapping[str, object] = field(default_factory=dict)
    target: Mapping[str, str] = field(default_factory=dict)
    create_index: int = 0
    modify_index: int = 0

    def problems(self, count: int) -> list[str]:
        """What is wrong with this policy for a group of ``count``, as ``Field: message``."""
        errs = []
        if self.max is None or self.max < 0:
            return ["Max: maximum count must be specified and non-negative"]
        if self.min is not None and self.min < 0:
            errs.append("Min: minimum count must be non-negative")
        if self.min is not None and self.min > self.max:
            errs.append(f"Min: minimum count ({self.min}) must not exceed maximum count ({self.max})")
        if count > self.max:
            errs.append(f"Max: task group count ({count}) is greater than the policy maximum ({self.max})")
        if self.min is not None and count < self.min:
            errs.append(f"Min: task group count ({count}) is less than the policy minimum ({self.min})")
        return errs


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class JobScalingEvent:
    """One ``job scale`` request: a count change, or only a message/error (``count`` None)."""

    time: int = 0  # unix ns, made by the endpoint
    count: int | None = None
    previous_count: int = 0
    message: str = ""
    error: bool = False
    meta: Mapping[str, object] = field(default_factory=dict)
    eval_id: str = field(default="", metadata=api("EvalID"))


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class JobScalingEvents:
    """A job's scaling events per group, newest first (the ``scaling_events`` table's rows).
    ``job_create_index`` ties them to one incarnation of the job ID."""

    job_create_index: int = 0
    groups: Mapping[str, tuple[JobScalingEvent, ...]] = field(default_factory=dict)
