"""``Operator.*`` RPCs (Nomad's operator_endpoint.go): Raft configuration and peer removal."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from nomadd.structs.errors import NotFoundError, ValidationError

if TYPE_CHECKING:
    from nomadd.rpc import RPCRegistry
    from nomadd.server.server import Server

logger = logging.getLogger(__name__)

__all__ = ["register"]


def register(server: Server, registry: RPCRegistry) -> None:
    async def raft_get_configuration(args: dict[str, Any]) -> dict[str, Any]:
        by_addr = {s.raft_addr: s for s in server.servers()}
        leader = server.raft.leader()
        out = []
        for addr in server.raft.peers():
            s = by_addr.get(addr)
            out.append(
                {
                    "ID": s.id if s and s.id else addr,
                    "Node": s.name if s else "(unknown)",
                    "Address": addr,
                    "Leader": addr == leader,
                    "Voter": True,
                    "RaftProtocol": "3",
                }
            )
        return {
            "Index": server.raft.applied_index(),
            "Servers": out,
            "KnownLeader": server.raft.known_leader(),
            "LastContact": server.raft.last_contact_ms(),
        }

    async def _remove(addr: str) -> dict[str, Any]:
        if addr not in server.raft.peers():
            raise NotFoundError(f"address {addr!r} was not found in the Raft configuration")
        if addr == server.raft_addr:
            moved = await server.raft.transfer_leadership()
            if not moved:
                raise ValidationError("cannot remove the leader: leadership transfer failed")
            result: dict[str, Any] = await server.rpc_legacy(
                "Operator.RaftRemovePeerByAddress", {"Address": addr}
            )
            return result
        await server.raft.remove_peer(addr)
        logger.info("removed raft peer addr=%s", addr)
        return {"Address": addr}

    async def remove_by_address(args: dict[str, Any]) -> dict[str, Any]:
        addr = str(args.get("Address") or "")
        if not addr:
            raise ValidationError("missing peer address")
        return await _remove(addr)

    async def remove_by_id(args: dict[str, Any]) -> dict[str, Any]:
        peer_id = str(args.get("ID") or "")
        if not peer_id:
            raise ValidationError("missing peer id")
        peers = server.raft.peers()
        for s in server.servers():
            if s.id == peer_id and s.raft_addr in peers:
                return await _remove(s.raft_addr)
        if peer_id in peers:  # servers unknown to gossip are listed with their address as ID
            return await _remove(peer_id)
        raise NotFoundError(f"id {peer_id!r} was not found in the Raft configuration")

    registry.register_legacy("Operator.RaftGetConfiguration", raft_get_configuration, kind="read")
    registry.register_legacy("Operator.RaftRemovePeerByAddress", remove_by_address, kind="write")
    registry.register_legacy("Operator.RaftRemovePeerByID", remove_by_id, kind="write")
