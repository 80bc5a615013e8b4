"""The server parts of ``/v1/agent/*``: members, join, force-leave (Nomad's api/agent.go)."""

from __future__ import annotations

from typing import Any, cast

from nomadd.api.client import Client

__all__ = ["Members"]


class Members:
    def __init__(self, client: Client) -> None:
        self._c = client

    def members(self) -> dict[str, Any]:
        """``{ServerName, ServerRegion, ServerDC, Members: [{Name, Addr, Port, Tags, Status...}]}``."""
        value, _ = self._c.get("/v1/agent/members")
        return cast(dict[str, Any], value or {})

    def join(self, addresses: list[str]) -> dict[str, Any]:
        """``{"num_joined": N, "error": ""}``."""
        value, _ = self._c.put("/v1/agent/join", params={"address": addresses})
        return cast(dict[str, Any], value or {})

    def force_leave(self, node: str, prune: bool = False) -> dict[str, Any]:
        params: dict[str, str | bool] = {"node": node}
        if prune:
            params["prune"] = True
        value, _ = self._c.put("/v1/agent/force-leave", params=params)
        return cast(dict[str, Any], value or {})
