"""``Job.Plan`` and the job version RPCs (revert, scale, evaluate): requests and replies (revert,
scale and evaluate answer a register's ``JobRegisterReply``).

Diffs and annotations are Nomad's API JSON (plain dicts made by :mod:`nomadd.structs.job_diff`),
carried as free-form values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from nomadd.structs.alloc import AllocMetric
from nomadd.structs.eval import Evaluation
from nomadd.structs.job import Job
from nomadd.structs.requests import Envelope, Method, QueryMeta, WriteMeta
from nomadd.structs.requests.job import JobRegisterReply, JobSpecificRequest
from nomadd.structs.scaling import JobScalingEvent, ScalingPolicy

__all__ = [
    "JOB_EVALUATE",
    "JOB_PLAN",
    "JOB_REVERT",
    "JOB_SCALE",
    "JOB_SCALE_STATUS",
    "JOB_STABLE",
    "JOB_VERSION_DIFFS",
    "SCALING_GET_POLICY",
    "SCALING_LIST_POLICIES",
    "JobEvaluateRequest",
    "JobPlanReply",
    "JobPlanRequest",
    "JobRevertRequest",
    "JobScaleRequest",
    "JobScaleStatusReply",
    "JobStabilityEntry",
    "JobStableReply",
    "JobStableRequest",
    "JobVersionDiffsReply",
    "ScalingEventEntry",
    "ScalingPolicyListReply",
    "ScalingPolicyListRequest",
    "ScalingPolicyReply",
    "ScalingPolicyRequest",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class JobPlanRequest(Envelope):
    """A dry run of registering ``job``: the scheduler plans on a snapshot, nothing commits."""

    job: Job
    diff: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class JobPlanReply:
    meta: WriteMeta
    job_modify_index: int = 0
    diff: object = None  # Nomad's JobDiff JSON when the request asked for it
    annotations: object = None  # Nomad's PlanAnnotations JSON
    failed_tg_allocs: Mapping[str, AllocMetric] = field(default_factory=dict)
    created_evals: tuple[Evaluation, ...] = ()
    warnings: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class JobVersionDiffsReply:
    """The job's versions, newest first, and each one's diff against the one before it."""

    meta: QueryMeta
    versions: tuple[Job, ...] = ()
    diffs: object = None


@dataclass(frozen=True, slots=True, kw_only=True)
class JobRevertRequest(Envelope):
    job_id: str
    job_version: int = 0
    enforce_prior_version: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class JobStableRequest(Envelope):
    job_id: str
    job_version: int = 0
    stable: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class JobStableReply:
    meta: WriteMeta


@dataclass(frozen=True, slots=True, kw_only=True)
class JobScaleRequest(Envelope):
    """``count`` None with ``error`` set records a scaling event only (Nomad's rule)."""

    job_id: str
    group: str = ""
    count: int | None = None
    message: str = ""
    error: bool = False
    meta_data: Mapping[str, object] = field(default_factory=dict)
    enforce_index: bool = False
    job_modify_index: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class JobScaleStatusReply:
    meta: QueryMeta
    status: object = None  # Nomad's JobScaleStatusResponse JSON; None: no such job


@dataclass(frozen=True, slots=True, kw_only=True)
class JobEvaluateRequest(Envelope):
    job_id: str
    force_reschedule: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ScalingPolicyListRequest(Envelope):
    """``/v1/scaling/policies``: ``job`` and ``type`` filter when set."""

    job: str = ""
    type: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ScalingPolicyListReply:
    meta: QueryMeta
    policies: tuple[ScalingPolicy, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ScalingPolicyRequest(Envelope):
    policy_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ScalingPolicyReply:
    meta: QueryMeta
    policy: ScalingPolicy | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class JobStabilityEntry:
    """``JOB_STABILITY``: mark one version of a job stable (or not)."""

    namespace: str
    job_id: str
    version: int
    stable: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class ScalingEventEntry:
    """``SCALING_EVENT_REGISTER``: one ``job scale`` event of a group of a job."""

    namespace: str
    job_id: str
    job_create_index: int
    group: str
    event: JobScalingEvent


JOB_PLAN = Method("Job.Plan", JobPlanRequest, JobPlanReply)
JOB_VERSION_DIFFS = Method("Job.GetJobVersionDiffs", JobSpecificRequest, JobVersionDiffsReply)
JOB_REVERT = Method("Job.Revert", JobRevertRequest, JobRegisterReply)
JOB_STABLE = Method("Job.Stable", JobStableRequest, JobStableReply)
JOB_SCALE = Method("Job.Scale", JobScaleRequest, JobRegisterReply)
JOB_SCALE_STATUS = Method("Job.ScaleStatus", JobSpecificRequest, JobScaleStatusReply)
JOB_EVALUATE = Method("Job.Evaluate", JobEvaluateRequest, JobRegisterReply)
SCALING_LIST_POLICIES = Method("Scaling.ListPolicies", ScalingPolicyListRequest, ScalingPolicyListReply)
SCALING_GET_POLICY = Method("Scaling.GetPolicy", ScalingPolicyRequest, ScalingPolicyReply)
