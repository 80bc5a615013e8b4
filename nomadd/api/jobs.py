"""Jobs: ``/v1/jobs`` and ``/v1/job/:id`` (Nomad's api/jobs.go). Values are Nomad's JSON."""

from __future__ import annotations

from typing import Any, cast

from nomadd.api.client import Client, QueryMeta

__all__ = ["Jobs"]

Obj = dict[str, Any]
Objs = list[Obj]  # a module alias: inside the class, ``list`` is the method


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
        value, meta = self._c.get(f"/v1/job/{job_id}")
        return cast(Obj, value), meta

    def deregister(self, job_id: str, purge: bool = False) -> tuple[Obj, QueryMeta]:
        value, meta = self._c.delete(f"/v1/job/{job_id}", {"purge": True} if purge else None)
        return cast(Obj, value), meta

    def allocations(self, job_id: str, index: int = 0, wait: str = "") -> tuple[Objs, QueryMeta]:
        params: dict[str, str | int] = {}
        if index:
            params["index"] = index
        if wait:
            params["wait"] = wait
        value, meta = self._c.get(f"/v1/job/{job_id}/allocations", params)
        return cast(Objs, value or []), meta

    def evaluations(self, job_id: str) -> tuple[Objs, QueryMeta]:
        value, meta = self._c.get(f"/v1/job/{job_id}/evaluations")
        return cast(Objs, value or []), meta

    def summary(self, job_id: str) -> tuple[Obj, QueryMeta]:
        value, meta = self._c.get(f"/v1/job/{job_id}/summary")
        return cast(Obj, value), meta

    def versions(self, job_id: str) -> tuple[Objs, QueryMeta]:
        value, meta = self._c.get(f"/v1/job/{job_id}/versions")
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
