"""``Periodic.Force`` and ``Job.Dispatch`` RPCs, and the ``PERIODIC_LAUNCH`` Raft entry."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from nomadd.structs.eval import Evaluation
from nomadd.structs.job import Job
from nomadd.structs.requests import Envelope, Method, WriteMeta

__all__ = [
    "JOB_DISPATCH",
    "PERIODIC_FORCE",
    "JobDispatchReply",
    "JobDispatchRequest",
    "PeriodicForceReply",
    "PeriodicForceRequest",
    "PeriodicLaunchEntry",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class PeriodicForceRequest(Envelope):
    job_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PeriodicForceReply:
    meta: WriteMeta
    eval_id: str = ""
    eval_create_index: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class JobDispatchRequest(Envelope):
    """Dispatch a child of the parameterized job ``job_id``; ``payload`` is the base64 text
    the API carries (decoded and checked by the endpoint)."""

    job_id: str
    payload: str = ""
    meta: Mapping[str, str] = field(default_factory=dict)
    idempotency_token: str = ""
    id_prefix_template: str = ""
    priority: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class JobDispatchReply:
    meta: WriteMeta
    dispatched_job_id: str = ""
    eval_id: str = ""
    eval_create_index: int = 0
    job_create_index: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class PeriodicLaunchEntry:
    """``PERIODIC_LAUNCH``: one child of a periodic job, its evaluation and the launch time,
    written together. The FSM refuses it when the child exists already, and, unless
    ``force``, when ``launch`` is not after the recorded last launch: a launch is never
    applied twice, whichever leader proposed it."""

    job: Job
    eval: Evaluation
    launch: int  # unix ns: the cron time (or now, for a forced or catch-up launch)
    force: bool = False
    submit_time: int = 0


PERIODIC_FORCE = Method("Periodic.Force", PeriodicForceRequest, PeriodicForceReply)
JOB_DISPATCH = Method("Job.Dispatch", JobDispatchRequest, JobDispatchReply)
