"""Evaluations: ``/v1/evaluations``, ``/v1/evaluation/:id`` (Nomad's api/evaluations.go)."""

from __future__ import annotations

from typing import Any, cast

from nomadd.api.client import Client, QueryMeta

__all__ = ["Evaluations"]

Obj = dict[str, Any]
Objs = list[Obj]  # a module alias: inside the class, ``list`` is the method


class Evaluations:
    def __init__(self, client: Client) -> None:
        self._c = client

    def list(self, prefix: str = "") -> tuple[Objs, QueryMeta]:
        value, meta = self._c.get("/v1/evaluations", {"prefix": prefix} if prefix else None)
        return cast(Objs, value or []), meta

    def info(self, eval_id: str, index: int = 0, wait: str = "") -> tuple[Obj, QueryMeta]:
        params: dict[str, str | int] = {}
        if index:
            params["index"] = index
        if wait:
            params["wait"] = wait
        value, meta = self._c.get(f"/v1/evaluation/{eval_id}", params)
        return cast(Obj, value), meta

    def allocations(self, eval_id: str) -> tuple[Objs, QueryMeta]:
        value, meta = self._c.get(f"/v1/evaluation/{eval_id}/allocations")
        return cast(Objs, value or []), meta
