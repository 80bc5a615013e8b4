"""nomadd's service catalog: ``/v1/services``, ``/v1/service/:name`` (Nomad's api/services.go)."""

from __future__ import annotations

import urllib.parse
from typing import Any, cast

from nomadd.api.client import Client, QueryMeta

__all__ = ["Services"]


class Services:
    def __init__(self, client: Client) -> None:
        self._c = client

    def list_services(self) -> tuple[list[dict[str, Any]], QueryMeta]:
        """``[{Namespace, Services: [{ServiceName, Tags}]}]``."""
        value, meta = self._c.get("/v1/services")
        return cast(list[dict[str, Any]], value or []), meta

    def get(self, name: str) -> tuple[list[dict[str, Any]], QueryMeta]:
        """The registrations of service ``name``."""
        value, meta = self._c.get(f"/v1/service/{urllib.parse.quote(name, safe='')}")
        return cast(list[dict[str, Any]], value or []), meta

    def delete(self, name: str, reg_id: str) -> None:
        self._c.delete(
            f"/v1/service/{urllib.parse.quote(name, safe='')}/{urllib.parse.quote(reg_id, safe='')}"
        )
