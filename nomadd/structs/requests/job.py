"""``Job.*`` RPC requests and replies, and the job entries of the Raft log."""

from __future__ import annotations

from dataclasses import dataclass

from nomadd.structs.alloc import AllocListStub
from nomadd.structs.eval import Evaluation
from nomadd.structs.job import Job, JobListStub
from nomadd.structs.requests import Envelope, Method, QueryMeta, WriteMeta
from nomadd.structs.summary import JobSummary

__all__ = [
    "JOB_ALLOCATIONS",
    "JOB_DEREGISTER",
    "JOB_EVALUATIONS",
    "JOB_GET",
    "JOB_LIST",
    "JOB_REGISTER",
    "JOB_SUMMARY",
    "JOB_VERSIONS",
    "JobAllocationsReply",
    "JobDeregisterEntry",
    "JobDeregisterReply",
    "JobDeregisterRequest",
    "JobEvaluationsReply",
    "JobGetReply",
    "JobListReply",
    "JobListRequest",
    "JobRegisterBatchEntry",
    "JobRegisterEntry",
    "JobRegisterReply",
    "JobRegisterRequest",
    "JobSpecificRequest",
    "JobSummaryReply",
    "JobVersionsReply",
]


# ---- requests ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class JobRegisterRequest(Envelope):
    """Register (create or update) ``job``; it is canonicalized and validated at the edge.
    ``enforce_index``: only if the stored job's JobModifyIndex is ``job_modify_index`` (0: the
    job must not exist), Nomad's check-and-set of ``job run -check-index``."""

    job: Job
    enforce_index: bool = False
    job_modify_index: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class JobDeregisterRequest(Envelope):
    job_id: str
    purge: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class JobSpecificRequest(Envelope):
    """A read about one job (``Job.GetJob``, ``.Allocations``, ``.Evaluations``, ...)."""

    job_id: str
    all: bool = False  # Job.Allocations: also the allocations of earlier jobs of this ID (?all=true)


@dataclass(frozen=True, slots=True, kw_only=True)
class JobListRequest(Envelope):
    prefix: str = ""


# ---- replies -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class JobRegisterReply:
    meta: WriteMeta
    eval_id: str
    eval_create_index: int
    job_modify_index: int
    warnings: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class JobDeregisterReply:
    meta: WriteMeta
    eval_id: str
    eval_create_index: int
    job_modify_index: int


@dataclass(frozen=True, slots=True, kw_only=True)
class JobGetReply:
    meta: QueryMeta
    job: Job | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class JobListReply:
    meta: QueryMeta
    jobs: tuple[JobListStub, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class JobAllocationsReply:
    meta: QueryMeta
    allocations: tuple[AllocListStub, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class JobEvaluationsReply:
    meta: QueryMeta
    evaluations: tuple[Evaluation, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class JobSummaryReply:
    meta: QueryMeta
    summary: JobSummary | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class JobVersionsReply:
    """``versions`` is empty when the job does not exist."""

    meta: QueryMeta
    versions: tuple[Job, ...] = ()


# ---- Raft entries --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class JobRegisterEntry:
    """``JOB_REGISTER``: the job and its evaluation, written together (Nomad's rule)."""

    job: Job
    eval: Evaluation | None = None
    submit_time: int = 0  # unix ns, made by the endpoint
    enforce_index: bool = False  # apply only if the stored JobModifyIndex is job_modify_index
    job_modify_index: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class JobRegisterBatchEntry:
    """``JOB_REGISTER_BATCH``: registers that arrived while one was in Raft (group commit)."""

    requests: tuple[JobRegisterEntry, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class JobDeregisterEntry:
    """``JOB_DEREGISTER``: stop (a new version with ``stop``) or purge, and its evaluation."""

    namespace: str
    job_id: str
    purge: bool = False
    eval: Evaluation | None = None
    submit_time: int = 0


# ---- methods -------------------------------------------------------------------------------

JOB_REGISTER = Method("Job.Register", JobRegisterRequest, JobRegisterReply)
JOB_DEREGISTER = Method("Job.Deregister", JobDeregisterRequest, JobDeregisterReply)
JOB_GET = Method("Job.GetJob", JobSpecificRequest, JobGetReply)
JOB_LIST = Method("Job.List", JobListRequest, JobListReply)
JOB_ALLOCATIONS = Method("Job.Allocations", JobSpecificRequest, JobAllocationsReply)
JOB_EVALUATIONS = Method("Job.Evaluations", JobSpecificRequest, JobEvaluationsReply)
JOB_SUMMARY = Method("Job.Summary", JobSpecificRequest, JobSummaryReply)
JOB_VERSIONS = Method("Job.GetJobVersions", JobSpecificRequest, JobVersionsReply)
