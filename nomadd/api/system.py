"""``PUT /v1/system/gc`` (Nomad's api/system.go)."""

from __future__ import annotations

from nomadd.api.client import Client

__all__ = ["System"]


class System:
    def __init__(self, client: Client) -> None:
        self._c = client

    def garbage_collect(self) -> None:
        self._c.put("/v1/system/gc")
