"""A server's table of internal RPC methods (``"Endpoint.Method"`` → handler + kind).

``kind`` says where a call may run (Nomad's ``forward`` rules):

* ``local``  — on whichever server received it (status, membership views);
* ``read``   — on the leader, unless the request map has ``AllowStale: true``;
* ``write``  — always on the leader (it proposes Raft entries).

The dispatcher lives in ``nomadd.server.server.Server.rpc``; this module only holds the table.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from nomadd.structs.errors import NotFoundError

__all__ = ["MethodKind", "RPCHandler", "RPCMethod", "RPCRegistry"]

MethodKind = Literal["local", "read", "write"]
RPCHandler = Callable[[dict[str, Any]], Awaitable[Any]]


@dataclass(frozen=True, slots=True, kw_only=True)
class RPCMethod:
    name: str
    handler: RPCHandler
    kind: MethodKind


class RPCRegistry:
    def __init__(self) -> None:
        self._methods: dict[str, RPCMethod] = {}

    def register(self, name: str, handler: RPCHandler, *, kind: MethodKind) -> None:
        if "." not in name:
            raise ValueError(f"rpc method {name!r} must look like Endpoint.Method")
        if name in self._methods:
            raise ValueError(f"rpc method {name!r} registered twice")
        self._methods[name] = RPCMethod(name=name, handler=handler, kind=kind)

    def lookup(self, name: str) -> RPCMethod:
        method = self._methods.get(name)
        if method is None:
            raise NotFoundError(f"rpc: unknown method {name!r}")
        return method

    def names(self) -> list[str]:
        return sorted(self._methods)
