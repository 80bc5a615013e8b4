"""``Deployment.*`` RPC requests and replies, and the ``DEPLOYMENT_UPDATE`` entry of the Raft log.

One entry kind carries every deployment write (Nomad spreads them over several message types):
new or replaced deployments, status changes, promotions, allocation health set by an operator,
a job version marked stable, a job registered again (auto-revert) and the evaluations that
follow. The FSM applies the parts in that order inside one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

from nomadd.structs.alloc import AllocListStub
from nomadd.structs.deployment import Deployment, DeploymentStatusUpdate
from nomadd.structs.eval import Evaluation
from nomadd.structs.job import Job
from nomadd.structs.requests import Envelope, Method, QueryMeta, WriteMeta

__all__ = [
    "DEPLOYMENT_ALLOCATIONS",
    "DEPLOYMENT_ALLOC_HEALTH",
    "DEPLOYMENT_FAIL",
    "DEPLOYMENT_GET",
    "DEPLOYMENT_LIST",
    "DEPLOYMENT_PAUSE",
    "DEPLOYMENT_PROMOTE",
    "DEPLOYMENT_UNBLOCK",
    "AllocHealthSet",
    "DeploymentAllocHealthRequest",
    "DeploymentAllocsReply",
    "DeploymentGetReply",
    "DeploymentListReply",
    "DeploymentListRequest",
    "DeploymentPauseRequest",
    "DeploymentPromote",
    "DeploymentPromoteRequest",
    "DeploymentSpecificRequest",
    "DeploymentStatusUpdate",
    "DeploymentUpdateEntry",
    "DeploymentUpdateReply",
    "JobStable",
]


# ---- requests ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class DeploymentSpecificRequest(Envelope):
    """One deployment by ID or unique prefix (get, allocations, fail, unblock)."""

    deployment_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DeploymentListRequest(Envelope):
    """Deployments of a namespace (``*``: all) by ID prefix, or of one job (``job_id``)."""

    prefix: str = ""
    job_id: str = ""
    latest: bool = False  # only the job's latest deployment (``/v1/job/:id/deployment``)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeploymentPauseRequest(Envelope):
    deployment_id: str
    pause: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class DeploymentPromoteRequest(Envelope):
    deployment_id: str
    all: bool = False
    groups: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class DeploymentAllocHealthRequest(Envelope):
    deployment_id: str
    healthy_allocation_ids: tuple[str, ...] = ()
    unhealthy_allocation_ids: tuple[str, ...] = ()


# ---- replies -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class DeploymentGetReply:
    meta: QueryMeta
    deployment: Deployment | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeploymentListReply:
    meta: QueryMeta
    deployments: tuple[Deployment, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class DeploymentAllocsReply:
    meta: QueryMeta
    allocations: tuple[AllocListStub, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class DeploymentUpdateReply:
    """Nomad's ``DeploymentUpdateResponse``."""

    meta: WriteMeta
    eval_id: str = ""
    eval_create_index: int = 0
    deployment_modify_index: int = 0
    reverted_job_version: int | None = None


# ---- Raft entry ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class DeploymentPromote:
    deployment_id: str
    all: bool = True
    groups: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class AllocHealthSet:
    """Allocation health set for a deployment (operator's ``allocation-health``)."""

    deployment_id: str
    healthy: tuple[str, ...] = ()
    unhealthy: tuple[str, ...] = ()
    timestamp: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class JobStable:
    namespace: str
    job_id: str
    version: int
    stable: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class DeploymentUpdateEntry:
    """``DEPLOYMENT_UPDATE``; ``time_ns`` is the deployments' new ``ModifyTime``."""

    upserts: tuple[Deployment, ...] = ()
    status_updates: tuple[DeploymentStatusUpdate, ...] = ()
    promotions: tuple[DeploymentPromote, ...] = ()
    alloc_health: tuple[AllocHealthSet, ...] = ()
    stable: tuple[JobStable, ...] = ()
    job: Job | None = None  # registered again as a new version (auto-revert)
    evals: tuple[Evaluation, ...] = ()
    time_ns: int = 0


# ---- methods -------------------------------------------------------------------------------

DEPLOYMENT_GET = Method("Deployment.GetDeployment", DeploymentSpecificRequest, DeploymentGetReply)
DEPLOYMENT_LIST = Method("Deployment.List", DeploymentListRequest, DeploymentListReply)
DEPLOYMENT_ALLOCATIONS = Method("Deployment.Allocations", DeploymentSpecificRequest, DeploymentAllocsReply)
DEPLOYMENT_FAIL = Method("Deployment.Fail", DeploymentSpecificRequest, DeploymentUpdateReply)
DEPLOYMENT_PAUSE = Method("Deployment.Pause", DeploymentPauseRequest, DeploymentUpdateReply)
DEPLOYMENT_PROMOTE = Method("Deployment.Promote", DeploymentPromoteRequest, DeploymentUpdateReply)
DEPLOYMENT_ALLOC_HEALTH = Method(
    "Deployment.SetAllocHealth", DeploymentAllocHealthRequest, DeploymentUpdateReply
)
DEPLOYMENT_UNBLOCK = Method("Deployment.Unblock", DeploymentSpecificRequest, DeploymentUpdateReply)
