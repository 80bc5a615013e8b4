"""``/v1/status/*`` and ``/v1/regions`` (Nomad's api/status.go, api/regions.go)."""

from __future__ import annotations

from typing import cast

from nomadd.api.client import Client

__all__ = ["Status"]


class Status:
    def __init__(self, client: Client) -> None:
        self._c = client

    def leader(self, region: str = "") -> str:
        """The leader's raft address ("" when there is none) of ``region`` (the client's)."""
        value, _ = self._c.get("/v1/status/leader", {"region": region} if region else None)
        return str(value or "")

    def peers(self) -> list[str]:
        value, _ = self._c.get("/v1/status/peers")
        return [str(p) for p in cast(list[object], value or [])]

    def regions(self) -> list[str]:
        value, _ = self._c.get("/v1/regions")
        return [str(r) for r in cast(list[object], value or [])]
