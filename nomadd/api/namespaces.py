"""Namespaces, node pools and search (Nomad's api/namespace.go, api/node_pools.go, api/search.go)."""

from __future__ import annotations

from typing import Any, cast

from nomadd.api.client import Client, QueryMeta

__all__ = ["Namespaces", "NodePools", "Search"]

Obj = dict[str, Any]
Objs = list[Obj]  # a module alias: inside the class, ``list`` is the method


class _Named:
    """The five calls both kinds share: list, info, register (upsert) and delete."""

    _list = _one = ""

    def __init__(self, client: Client) -> None:
        self._c = client

    def list(self, prefix: str = "") -> tuple[Objs, QueryMeta]:
        value, meta = self._c.get(self._list, {"prefix": prefix} if prefix else None)
        return cast(Objs, value or []), meta

    def info(self, name: str) -> tuple[Obj, QueryMeta]:
        value, meta = self._c.get(f"{self._one}/{name}")
        return cast(Obj, value), meta

    def register(self, obj: Obj) -> QueryMeta:
        return self._c.put(f"{self._one}/{obj['Name']}", obj)[1]

    def delete(self, name: str) -> QueryMeta:
        return self._c.delete(f"{self._one}/{name}")[1]


class Namespaces(_Named):
    _list, _one = "/v1/namespaces", "/v1/namespace"


class NodePools(_Named):
    _list, _one = "/v1/node/pools", "/v1/node/pool"

    def nodes(self, name: str) -> tuple[Objs, QueryMeta]:
        value, meta = self._c.get(f"/v1/node/pool/{name}/nodes")
        return cast(Objs, value or []), meta

    def jobs(self, name: str) -> tuple[Objs, QueryMeta]:
        value, meta = self._c.get(f"/v1/node/pool/{name}/jobs")
        return cast(Objs, value or []), meta


class Search:
    def __init__(self, client: Client) -> None:
        self._c = client

    def prefix(self, prefix: str, context: str = "all") -> Obj:
        """``{"Matches": {context: [ids]}, "Truncations": {context: bool}}``."""
        value, _ = self._c.put("/v1/search", {"Prefix": prefix, "Context": context})
        return cast(Obj, value)

    def fuzzy(self, text: str, context: str = "all") -> Obj:
        value, _ = self._c.put("/v1/search/fuzzy", {"Text": text, "Context": context})
        return cast(Obj, value)
