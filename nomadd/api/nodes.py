"""Nodes: ``/v1/nodes``, ``/v1/node/:id`` and its sub-paths (Nomad's api/nodes.go)."""

from __future__ import annotations

from typing import Any, cast

from nomadd.api.client import Client, QueryMeta

__all__ = ["Nodes"]

_Rows = list[dict[str, Any]]  # module level: the class's own ``list`` method shadows the builtin


class Nodes:
    def __init__(self, client: Client) -> None:
        self._c = client

    def list(
        self, prefix: str = "", *, os: bool = False, resources: bool = False, index: int = 0, wait: str = ""
    ) -> tuple[_Rows, QueryMeta]:
        params: dict[str, str | int | bool] = {}
        if prefix:
            params["prefix"] = prefix
        if os:
            params["os"] = True
        if resources:
            params["resources"] = True
        if index:
            params["index"] = index
        if wait:
            params["wait"] = wait
        value, meta = self._c.get("/v1/nodes", params)
        return cast(_Rows, value or []), meta

    def info(self, node_id: str) -> tuple[dict[str, Any], QueryMeta]:
        value, meta = self._c.get(f"/v1/node/{node_id}")
        return cast(dict[str, Any], value), meta

    def allocations(self, node_id: str) -> _Rows:
        value, _ = self._c.get(f"/v1/node/{node_id}/allocations")
        return cast(_Rows, value or [])

    def toggle_eligibility(self, node_id: str, eligible: bool) -> dict[str, Any]:
        body = {"NodeID": node_id, "Eligibility": "eligible" if eligible else "ineligible"}
        value, _ = self._c.post(f"/v1/node/{node_id}/eligibility", body)
        return cast(dict[str, Any], value or {})

    def update_drain(
        self,
        node_id: str,
        *,
        deadline_ns: int | None,
        ignore_system_jobs: bool = False,
        mark_eligible: bool = False,
        meta: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Start a drain (``deadline_ns``: 0 none, -1 force now) or cancel it (None)."""
        spec = (
            None if deadline_ns is None else {"Deadline": deadline_ns, "IgnoreSystemJobs": ignore_system_jobs}
        )
        body = {"DrainSpec": spec, "MarkEligible": mark_eligible, "Meta": meta or {}}
        value, _ = self._c.post(f"/v1/node/{node_id}/drain", body)
        return cast(dict[str, Any], value or {})

    def purge(self, node_id: str) -> dict[str, Any]:
        value, _ = self._c.post(f"/v1/node/{node_id}/purge")
        return cast(dict[str, Any], value or {})
