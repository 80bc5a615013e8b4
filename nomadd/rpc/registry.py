"""A server's table of internal RPC methods: ``Method`` → handler + kind.

``kind`` says where a call may run (Nomad's ``forward`` rules):

* ``local``  — on whichever server received it (status, membership views);
* ``read``   — on the leader, unless the request's envelope has ``allow_stale``;
* ``write``  — always on the leader (it proposes Raft entries).

Handlers take the method's typed request (an :class:`~nomadd.structs.requests.Envelope`
subclass) and return its typed reply. The dispatcher lives in ``nomadd.server.server.Server.rpc``;
this module only holds the table.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, Literal

from nomadd.structs.errors import NotFoundError
from nomadd.structs.requests import Envelope, Method, Rep, Req

__all__ = ["MethodKind", "RPCHandler", "RPCMethod", "RPCRegistry"]

MethodKind = Literal["local", "read", "write"]
RPCHandler = Callable[[Req], Awaitable[Rep]]


@dataclass(frozen=True, slots=True, kw_only=True)
class RPCMethod(Generic[Req, Rep]):
    method: Method[Req, Rep]
    handler: Callable[[Req], Awaitable[Rep]]
    kind: MethodKind

    @property
    def name(self) -> str:
        return self.method.name


class RPCRegistry:
    def __init__(self) -> None:
        self._methods: dict[str, RPCMethod[Any, Any]] = {}

    def register(
        self, method: Method[Req, Rep], handler: Callable[[Req], Awaitable[Rep]], *, kind: MethodKind
    ) -> None:
        name = method.name
        if "." not in name:
            raise ValueError(f"rpc method {name!r} must look like Endpoint.Method")
        if name in self._methods:
            raise ValueError(f"rpc method {name!r} registered twice")
        if not issubclass(method.request, Envelope):
            raise TypeError(f"rpc method {name!r}: request type must carry the Envelope")
        self._methods[name] = RPCMethod(method=method, handler=handler, kind=kind)

    def lookup(self, name: str) -> RPCMethod[Any, Any]:
        method = self._methods.get(name)
        if method is None:
            raise NotFoundError(f"rpc: unknown method {name!r}")
        return method

    def names(self) -> list[str]:
        return sorted(self._methods)
