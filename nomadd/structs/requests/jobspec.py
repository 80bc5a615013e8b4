"""``Job.Validate`` (Nomad's ``PUT /v1/validate/job``): a job checked as registering it would,
without registering it."""

from __future__ import annotations

from dataclasses import dataclass

from nomadd.structs.job import Job
from nomadd.structs.requests import Envelope, Method, QueryMeta

__all__ = ["JOB_VALIDATE", "JobValidateReply", "JobValidateRequest"]


@dataclass(frozen=True, slots=True, kw_only=True)
class JobValidateRequest(Envelope):
    job: Job


@dataclass(frozen=True, slots=True, kw_only=True)
class JobValidateReply:
    """Nomad's ``JobValidateResponse``: every problem found (none: the job would register)."""

    meta: QueryMeta
    driver_config_validated: bool = False  # as Nomad: driver configs are checked by the clients
    validation_errors: tuple[str, ...] = ()
    error: str = ""
    warnings: str = ""


JOB_VALIDATE = Method("Job.Validate", JobValidateRequest, JobValidateReply)
