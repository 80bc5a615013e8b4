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

    def register(self, job: Obj) -> tuple[Obj, QueryMeta]:
        """``PUT /v1/jobs`` with ``{"Job": job}`` → ``{EvalID, EvalCreateIndex, JobModifyIndex, ...}``."""
        value, meta = self._c.put("/v1/jobs", {"Job": job})
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
