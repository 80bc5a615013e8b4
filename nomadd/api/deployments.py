"""Deployments: ``/v1/deployments``, ``/v1/deployment/...`` and ``/v1/job/:id/deployment(s)``
(Nomad's api/deployments.go). Values are Nomad's JSON."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast
from urllib.parse import quote

from nomadd.api.client import Client, QueryMeta

__all__ = ["Deployments"]

Obj = dict[str, Any]
Objs = list[Obj]  # a module alias: inside the class, ``list`` is the method


class Deployments:
    def __init__(self, client: Client) -> None:
        self._c = client

    def list(self, prefix: str = "") -> tuple[Objs, QueryMeta]:
        value, meta = self._c.get("/v1/deployments", {"prefix": prefix} if prefix else None)
        return cast(Objs, value or []), meta

    def info(self, deployment_id: str, index: int = 0, wait: str = "") -> tuple[Obj, QueryMeta]:
        params: dict[str, str | int] = {}
        if index:
            params["index"] = index
        if wait:
            params["wait"] = wait
        value, meta = self._c.get(f"/v1/deployment/{deployment_id}", params)
        return cast(Obj, value), meta

    def allocations(self, deployment_id: str) -> tuple[Objs, QueryMeta]:
        value, meta = self._c.get(f"/v1/deployment/allocations/{deployment_id}")
        return cast(Objs, value or []), meta

    def for_job(self, job_id: str) -> tuple[Objs, QueryMeta]:
        """The job's deployments, newest first."""
        value, meta = self._c.get(f"/v1/job/{quote(job_id, safe='')}/deployments")
        return cast(Objs, value or []), meta

    def latest_for_job(self, job_id: str) -> tuple[Obj | None, QueryMeta]:
        value, meta = self._c.get(f"/v1/job/{quote(job_id, safe='')}/deployment")
        return cast(Obj | None, value), meta

    def fail(self, deployment_id: str) -> tuple[Obj, QueryMeta]:
        value, meta = self._c.put(f"/v1/deployment/fail/{deployment_id}", {"DeploymentID": deployment_id})
        return cast(Obj, value), meta

    def pause(self, deployment_id: str, pause: bool) -> tuple[Obj, QueryMeta]:
        body = {"DeploymentID": deployment_id, "Pause": pause}
        value, meta = self._c.put(f"/v1/deployment/pause/{deployment_id}", body)
        return cast(Obj, value), meta

    def promote(self, deployment_id: str, groups: Sequence[str] = ()) -> tuple[Obj, QueryMeta]:
        body = {"DeploymentID": deployment_id, "All": not groups, "Groups": list(groups)}
        value, meta = self._c.put(f"/v1/deployment/promote/{deployment_id}", body)
        return cast(Obj, value), meta

    def set_alloc_health(
        self, deployment_id: str, healthy: Sequence[str], unhealthy: Sequence[str]
    ) -> tuple[Obj, QueryMeta]:
        body = {
            "DeploymentID": deployment_id,
            "HealthyAllocationIDs": list(healthy),
            "UnhealthyAllocationIDs": list(unhealthy),
        }
        value, meta = self._c.put(f"/v1/deployment/allocation-health/{deployment_id}", body)
        return cast(Obj, value), meta
