"""``Operator.*`` RPCs (Nomad's operator_endpoint.go): Raft configuration and peer removal.

Removing the leader itself first transfers leadership, then asks the new leader (through the
server's dispatcher) to remove it.
"""

from __future__ import annotations

import logging

from nomadd.rpc import RPCRegistry
from nomadd.server.context import ServerContext
from nomadd.structs.errors import NotFoundError, ValidationError
from nomadd.structs.requests import Envelope, QueryMeta, WriteMeta
from nomadd.structs.requests.operator import (
    OPERATOR_RAFT_CONFIGURATION,
    OPERATOR_REMOVE_PEER_BY_ADDRESS,
    OPERATOR_REMOVE_PEER_BY_ID,
    RaftConfigurationReply,
    RaftPeerByAddressRequest,
    RaftPeerByIDRequest,
    RaftRemovePeerReply,
    RaftServer,
)

logger = logging.getLogger(__name__)

__all__ = ["OperatorEndpoint"]


class OperatorEndpoint:
    def __init__(self, ctx: ServerContext) -> None:
        self._ctx = ctx

    def register(self, registry: RPCRegistry) -> None:
        registry.register(OPERATOR_RAFT_CONFIGURATION, self.raft_configuration, kind="read")
        registry.register(OPERATOR_REMOVE_PEER_BY_ADDRESS, self.remove_by_address, kind="write")
        registry.register(OPERATOR_REMOVE_PEER_BY_ID, self.remove_by_id, kind="write")

    async def raft_configuration(self, req: Envelope) -> RaftConfigurationReply:
        raft = self._ctx.raft
        by_addr = {s.raft_addr: s for s in self._ctx.servers()}
        leader = raft.leader()
        servers = []
        for addr in raft.peers():
            s = by_addr.get(addr)
            servers.append(
                RaftServer(
                    id=s.id if s and s.id else addr,
                    node=s.name if s else "(unknown)",
                    address=addr,
                    leader=addr == leader,
                )
            )
        meta = QueryMeta(
            index=raft.applied_index(),
            known_leader=raft.known_leader(),
            last_contact_ms=raft.last_contact_ms(),
        )
        return RaftConfigurationReply(meta=meta, servers=tuple(servers))

    async def _remove(self, addr: str, req: Envelope) -> RaftRemovePeerReply:
        raft = self._ctx.raft
        if addr not in raft.peers():
            raise NotFoundError(f"address {addr!r} was not found in the Raft configuration")
        if addr == self._ctx.raft_addr:
            moved = await raft.transfer_leadership()
            if not moved:
                raise ValidationError("cannot remove the leader: leadership transfer failed")
            # the new leader removes us, for the same caller (its identity and token)
            fields = {f: getattr(req, f) for f in Envelope.__dataclass_fields__ if f != "forwarded"}
            return await self._ctx.rpc(
                OPERATOR_REMOVE_PEER_BY_ADDRESS, RaftPeerByAddressRequest(address=addr, **fields)
            )
        await raft.remove_peer(addr)
        logger.info("removed raft peer addr=%s", addr)
        return RaftRemovePeerReply(meta=WriteMeta(index=raft.applied_index()), address=addr)

    async def remove_by_address(self, req: RaftPeerByAddressRequest) -> RaftRemovePeerReply:
        if not req.address:
            raise ValidationError("missing peer address")
        return await self._remove(req.address, req)

    async def remove_by_id(self, req: RaftPeerByIDRequest) -> RaftRemovePeerReply:
        if not req.id:
            raise ValidationError("missing peer id")
        peers = self._ctx.raft.peers()
        for s in self._ctx.servers():
            if s.id == req.id and s.raft_addr in peers:
                return await self._remove(s.raft_addr, req)
        if req.id in peers:  # servers unknown to gossip are listed with their address as ID
            return await self._remove(req.id, req)
        raise NotFoundError(f"id {req.id!r} was not found in the Raft configuration")
