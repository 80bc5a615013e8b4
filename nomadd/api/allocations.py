"""Allocations: ``/v1/allocations``, ``/v1/allocation/:id`` (Nomad's api/allocations.go)."""

from __future__ import annotations

from typing import Any, cast

from nomadd.api.client import Client, QueryMeta

__all__ = ["Allocations"]

Obj = dict[str, Any]
Objs = list[Obj]  # a module alias: inside the class, ``list`` is the method


class Allocations:
    def __init__(self, client: Client) -> None:
        self._c = client

    def list(self, prefix: str = "") -> tuple[Objs, QueryMeta]:
        value, meta = self._c.get("/v1/allocations", {"prefix": prefix} if prefix else None)
        return cast(Objs, value or []), meta

    def info(self, alloc_id: str) -> tuple[Obj, QueryMeta]:
        value, meta = self._c.get(f"/v1/allocation/{alloc_id}")
        return cast(Obj, value), meta

    def stop(self, alloc_id: str) -> tuple[Obj, QueryMeta]:
        value, meta = self._c.post(f"/v1/allocation/{alloc_id}/stop")
        return cast(Obj, value), meta

    def stats(self, alloc_id: str) -> Obj:
        """``AllocResourceUsage`` of the allocation's running tasks (asked of its node)."""
        value, _ = self._c.get(f"/v1/client/allocation/{alloc_id}/stats")
        return cast(Obj, value or {})

    def restart(self, alloc_id: str, task: str = "") -> None:
        self._c.put(f"/v1/client/allocation/{alloc_id}/restart", {"TaskName": task})

    def gc(self, alloc_id: str) -> None:
        self._c.get(f"/v1/client/allocation/{alloc_id}/gc")
