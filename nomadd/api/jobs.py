"""Jobs: ``/v1/jobs`` and ``/v1/job/:id`` (Nomad's api/jobs.go). Values are Nomad's JSON."""

from __future__ import annotations

import base64
from typing import Any, cast
from urllib.parse import quote

from nomadd.api.client import Client, QueryMeta

__all__ = ["Jobs"]

Obj = dict[str, Any]
Objs = list[Obj]  # a module alias: inside the class, ``list`` is the method


def _q(job_id: str) -> str:
    """A job ID as one path segment (children's IDs hold a ``/``), as Nomad's url.PathEscape."""
    return quote(job_id, safe="")


class Jobs:
    def __init__(self, client: Client) -> None:
        self._c = client

    def register(self, job: Obj, check_index: int | None = None) -> tuple[Obj, QueryMeta]:
        """``PUT /v1/jobs`` with ``{"Job": job}`` → ``{EvalID, EvalCreateIndex, JobModifyIndex, ...}``.
        ``check_index``: only if the stored job's JobModifyIndex is that (0: it must not exist)."""
        body: Obj = {"Job": job}
        if check_index is not None:
            body.update(EnforceIndex=True, JobModifyIndex=check_index)
        value, meta = self._c.put("/v1/jobs", body)
        return cast(Obj, value), meta

    def list(self, prefix: str = "") -> tuple[Objs, QueryMeta]:
        value, meta = self._c.get("/v1/jobs", {"prefix": prefix} if prefix else None)
        return cast(Objs, value or []), meta

    def info(self, job_id: str) -> tuple[Obj, QueryMeta]:
        value, meta = self._c.get(f"/v1/job/{_q(job_id)}")
        return cast(Obj, value), meta

    def deregister(self, job_id: str, purge: bool = False) -> tuple[Obj, QueryMeta]:
        value, meta = self._c.delete(f"/v1/job/{_q(job_id)}", {"purge": True} if purge else None)
        return cast(Obj, value), meta

    def allocations(self, job_id: str, index: int = 0, wait: str = "") -> tuple[Objs, QueryMeta]:
        params: dict[str, str | int] = {}
        if index:
            params["index"] = index
        if wait:
            params["wait"] = wait
        value, meta = self._c.get(f"/v1/job/{_q(job_id)}/allocations", params)
        return cast(Objs, value or []), meta

    def evaluations(self, job_id: str) -> tuple[Objs, QueryMeta]:
        value, meta = self._c.get(f"/v1/job/{_q(job_id)}/evaluations")
        return cast(Objs, value or []), meta

    def summary(self, job_id: str) -> tuple[Obj, QueryMeta]:
        value, meta = self._c.get(f"/v1/job/{_q(job_id)}/summary")
        return cast(Obj, value), meta

    def versions(self, job_id: str) -> tuple[Objs, QueryMeta]:
        value, meta = self._c.get(f"/v1/job/{_q(job_id)}/versions")
        return cast(Objs, cast(Obj, value or {}).get("Versions") or []), meta

    def plan(self, job: Obj, diff: bool = True) -> tuple[Obj, QueryMeta]:
        """``PUT /v1/job/:id/plan``: the scheduler's dry run (Nomad's JobPlanResponse)."""
        job_id = str(job.get("ID") or "")
        value, meta = self._c.put(f"/v1/job/{job_id}/plan", {"Job": job, "Diff": diff})
        return cast(Obj, value), meta

    def version_diffs(self, job_id: str) -> tuple[Obj, QueryMeta]:
        """``GET /v1/job/:id/versions?diffs=true`` → ``{Versions, Diffs}``."""
        value, meta = self._c.get(f"/v1/job/{job_id}/versions", {"diffs": "true"})
        return cast(Obj, value or {}), meta

    def revert(
        self, job_id: str, version: int, enforce_prior_version: int | None = None
    ) -> tuple[Obj, QueryMeta]:
        body: Obj = {"JobID": job_id, "JobVersion": version}
        if enforce_prior_version is not None:
            body["EnforcePriorVersion"] = enforce_prior_version
        value, meta = self._c.post(f"/v1/job/{job_id}/revert", body)
        return cast(Obj, value), meta

    def scale(self, job_id: str, group: str, count: int | None, message: str = "") -> tuple[Obj, QueryMeta]:
        body: Obj = {"Count": count, "Target": {"Job": job_id, "Group": group}, "Message": message}
        value, meta = self._c.post(f"/v1/job/{job_id}/scale", body)
        return cast(Obj, value), meta

    def scale_status(self, job_id: str) -> tuple[Obj, QueryMeta]:
        value, meta = self._c.get(f"/v1/job/{job_id}/scale")
        return cast(Obj, value), meta

    def evaluate(self, job_id: str, force_reschedule: bool = False) -> tuple[Obj, QueryMeta]:
        body = {"JobID": job_id, "EvalOptions": {"ForceReschedule": force_reschedule}}
        value, meta = self._c.post(f"/v1/job/{job_id}/evaluate", body)
        return cast(Obj, value), meta

    def stable(self, job_id: str, version: int, stable: bool = True) -> tuple[Obj, QueryMeta]:
        body = {"JobID": job_id, "JobVersion": version, "Stable": stable}
        value, meta = self._c.put(f"/v1/job/{job_id}/stable", body)
        return cast(Obj, value), meta

    def scaling_policies(self, job_id: str = "") -> tuple[Objs, QueryMeta]:
        """``GET /v1/scaling/policies`` (``?job=``): the groups' ``scaling {}`` blocks, as stubs."""
        value, meta = self._c.get("/v1/scaling/policies", {"job": job_id} if job_id else None)
        return cast(Objs, value or []), meta

    def scaling_policy(self, policy_id: str) -> tuple[Obj, QueryMeta]:
        value, meta = self._c.get(f"/v1/scaling/policy/{policy_id}")
        return cast(Obj, value), meta

    def parse(self, hcl: str, canonicalize: bool = False, variables: str = "") -> Obj:
        """``PUT /v1/jobs/parse``: an HCL job specification as the API JSON job."""
        body = {"JobHCL": hcl, "Canonicalize": canonicalize, "Variables": variables}
        value, _ = self._c.put("/v1/jobs/parse", body)
        return cast(Obj, value)

    def validate(self, job: Obj) -> Obj:
        """``PUT /v1/validate/job`` → ``{DriverConfigValidated, ValidationErrors, Error, Warnings}``."""
        value, _ = self._c.put("/v1/validate/job", {"Job": job})
        return cast(Obj, value)

    def periodic_force(self, job_id: str) -> tuple[Obj, QueryMeta]:
        """``PUT /v1/job/:id/periodic/force`` → ``{EvalID, EvalCreateIndex, Index}``."""
        value, meta = self._c.put(f"/v1/job/{_q(job_id)}/periodic/force")
        return cast(Obj, value), meta

    def dispatch(
        self,
        job_id: str,
        payload: bytes = b"",
        meta: dict[str, str] | None = None,
        *,
        idempotency_token: str = "",
        id_prefix_template: str = "",
        priority: int = 0,
    ) -> tuple[Obj, QueryMeta]:
        """``PUT /v1/job/:id/dispatch`` → ``{DispatchedJobID, EvalID, EvalCreateIndex, JobCreateIndex}``."""
        body: Obj = {"JobID": job_id, "Meta": meta or {}, "IdPrefixTemplate": id_prefix_template}
        if payload:
            body["Payload"] = base64.b64encode(payload).decode()
        if priority:
            body["Priority"] = priority
        params = {"idempotency_token": idempotency_token} if idempotency_token else None
        value, wmeta = self._c.put(f"/v1/job/{_q(job_id)}/dispatch", body, params)
        return cast(Obj, value), wmeta
