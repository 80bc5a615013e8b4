"""The server's side of internal RPC authentication (see :mod:`nomadd.rpc.auth`).

:meth:`RPCAuth.authenticate` runs on every ``/v1/internal/*`` call before its body is used: it
returns who is calling, or raises 401/403. :meth:`RPCAuth.admit` puts that identity into the
request's envelope (never trusting one from the wire unless a server signed the body), and
:meth:`RPCAuth.authorize` — called by the dispatcher for every call, in-process ones too —
refuses a caller the method's access class does not allow.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
from collections.abc import Callable, Mapping
from typing import TypeVar

from nomadd.rpc.auth import (
    NODE_ID_HEADER,
    NODE_SECRET_HEADER,
    SERVER_AUTH_HEADER,
    ServerSigner,
    access_of,
    unauthenticated,
)
from nomadd.structs.errors import PermissionDeniedError, UnknownNodeError
from nomadd.structs.node import Node
from nomadd.structs.requests import Caller, CallerKind, Envelope
from nomadd.structs.requests.node import NodeRegisterRequest

__all__ = ["RPCAuth", "Verified"]

E = TypeVar("E", bound=Envelope)

_REGISTER = "Node.Register"
NODE_CATCH_UP_S = 1.0


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Verified:
    """What the transport credential proved: a server (which vouches for the body), or a node.

    ``joining`` is a node not registered yet: only its own ``Node.Register`` is let through.
    """

    server: bool = False
    node_id: str = ""
    node_secret: str = ""
    joining: bool = False


def _target_node(req: Envelope) -> str:
    if isinstance(req, NodeRegisterRequest):
        return req.node.id
    node_id = getattr(req, "node_id", "")
    return node_id if isinstance(node_id, str) else ""


class RPCAuth:
    def __init__(self, signer: ServerSigner, node_of: Callable[[str], Node | None]) -> None:
        self._signer = signer
        self._node_of = node_of

    async def _find_node(self, node_id: str) -> Node | None:
        """The registered node; a follower may lag the leader that just registered it, so an
        unknown node is looked up again for up to :data:`NODE_CATCH_UP_S`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + NODE_CATCH_UP_S
        while (node := self._node_of(node_id)) is None and loop.time() < deadline:
            await asyncio.sleep(0.05)
        return node

    async def authenticate(
        self, method: str, headers: Mapping[str, str], body: bytes, *, peer_server: bool = False
    ) -> Verified:
        """Check the call's credential; raises 401 without one, 403 with a bad one, 404 for a
        node the servers do not know (the client then registers again). ``peer_server``: the
        caller presented a server certificate over mutual TLS (``server.<region>.nomad``),
        which only servers hold, so it counts as a server credential too."""
        server_auth = headers.get(SERVER_AUTH_HEADER, "")
        if server_auth:
            self._signer.verify(method, body, server_auth)
            return Verified(server=True)
        if peer_server:
            return Verified(server=True)
        node_id = headers.get(NODE_ID_HEADER, "")
        secret = headers.get(NODE_SECRET_HEADER, "")
        if not node_id or not secret:
            raise unauthenticated(method)
        if method == _REGISTER and self._node_of(node_id) is None:
            return Verified(node_id=node_id, node_secret=secret, joining=True)
        node = await self._find_node(node_id)
        if node is None:
            raise UnknownNodeError(f"rpc {method}: node not found: {node_id}")
        if not node.secret_id or not hmac.compare_digest(node.secret_id.encode(), secret.encode()):
            raise PermissionDeniedError(f"rpc {method}: node secret ID does not match")
        return Verified(node_id=node_id, node_secret=secret)

    def admit(self, method: str, req: E, verified: Verified) -> E:
        """``req`` with its verified caller; a joining node must register itself, and only itself."""
        if verified.server:
            return req  # a server signed the body: the caller in it is the one that server verified
        if verified.joining:
            node = req.node if isinstance(req, NodeRegisterRequest) else None
            if node is None or node.id != verified.node_id or node.secret_id != verified.node_secret:
                raise PermissionDeniedError(f"rpc {method}: a new node may only register itself")
        caller = Caller(kind=CallerKind.NODE, node_id=verified.node_id)
        return dataclasses.replace(req, caller=caller, forwarded=False)

    def authorize(self, method: str, req: Envelope) -> None:
        """Refuse a caller the method's access class does not allow (403)."""
        caller = req.caller
        if caller.kind == CallerKind.SERVER:
            return
        access = access_of(method)
        if access == "server":
            raise PermissionDeniedError(f"rpc {method}: only servers may call it")
        if access == "node" and (caller.kind != CallerKind.NODE or caller.node_id != _target_node(req)):
            raise PermissionDeniedError(f"rpc {method}: only the node itself may call it")
