"""What every server endpoint and leader component is built from: one :class:`ServerContext`.

The server makes the context once (store, FSM, Raft, blocking queries, config, its RPC
dispatcher and the leader loop) and builds each endpoint class from it, so no endpoint reaches
into the ``Server`` object and nothing lives in module-level registries.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nomadd.server.acl.resolver import ACLResolver
from nomadd.server.blocking import BlockingQueries
from nomadd.server.fsm import FSM
from nomadd.server.state.store import StateStore
from nomadd.structs.requests import Method, Rep, Req

if TYPE_CHECKING:
    from nomadd.server.config import ServerConfig
    from nomadd.server.leader import LeaderComponent
    from nomadd.server.membership import ServerInfo
    from nomadd.server.raft import Raft

__all__ = ["RPCDispatch", "ServerContext"]


class RPCDispatch:
    """Calls an RPC method through the server's dispatcher (forwarding to the leader as needed)."""

    def __init__(self, dispatch: Callable[[Method[Any, Any], Any], Awaitable[Any]]) -> None:
        self._dispatch = dispatch

    async def __call__(self, method: Method[Req, Rep], request: Req) -> Rep:
        reply: Rep = await self._dispatch(method, request)
        return reply


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerContext:
    config: ServerConfig
    store: StateStore
    fsm: FSM
    raft: Raft
    blocking: BlockingQueries
    rpc: RPCDispatch
    register_leader_component: Callable[[LeaderComponent], None]
    servers: Callable[[], list[ServerInfo]]  # this region's servers as gossip sees them
    http_addr: str
    raft_addr: str
    acl: ACLResolver  # the one way to turn a request's auth_token into an ACL

    async def propose(self, msg_type: int, entry: object) -> tuple[object, int]:
        """Commit ``entry`` as one Raft entry of ``msg_type``; returns ``(fsm result, index)``.

        This server's FSM applies ``entry`` itself (it is not decoded again); the others decode
        the payload into the same type and run the same apply function.
        """
        payload = self.fsm.encode(msg_type, entry)
        return await self.raft.apply(msg_type, payload, request=entry)
