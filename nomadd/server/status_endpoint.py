"""``Status.*`` RPCs (Nomad's status_endpoint.go): leader, peers, ping, members, regions.

All ``local``: answered by the server that receives them, from its own Raft and gossip view
(``members`` gives the gossip pool's members; the server passes it, gossip starts after the
endpoints are built).
"""

from __future__ import annotations

from collections.abc import Callable

from nomadd.gossip import Member
from nomadd.rpc import RPCRegistry
from nomadd.server.context import ServerContext
from nomadd.structs.requests import Envelope
from nomadd.structs.requests.status import (
    STATUS_LEADER,
    STATUS_MEMBERS,
    STATUS_PEERS,
    STATUS_PING,
    STATUS_REGIONS,
    ServerMember,
    StatusLeaderReply,
    StatusMembersReply,
    StatusPeersReply,
    StatusPingReply,
    StatusRegionsReply,
)

__all__ = ["StatusEndpoint", "server_member"]


def server_member(m: Member) -> ServerMember:
    return ServerMember(name=m.name, addr=m.addr, port=m.port, tags=dict(m.tags), status=str(m.status))


class StatusEndpoint:
    def __init__(self, ctx: ServerContext, *, members: Callable[[], list[Member]]) -> None:
        self._ctx = ctx
        self._members = members

    def register(self, registry: RPCRegistry) -> None:
        registry.register(STATUS_LEADER, self.leader, kind="local")
        registry.register(STATUS_PEERS, self.peers, kind="local")
        registry.register(STATUS_PING, self.ping, kind="local")
        registry.register(STATUS_MEMBERS, self.members, kind="local")
        registry.register(STATUS_REGIONS, self.regions, kind="local")

    async def leader(self, req: Envelope) -> StatusLeaderReply:
        return StatusLeaderReply(leader=self._ctx.raft.leader() or "")

    async def peers(self, req: Envelope) -> StatusPeersReply:
        return StatusPeersReply(peers=tuple(self._ctx.raft.peers()))

    async def ping(self, req: Envelope) -> StatusPingReply:
        return StatusPingReply()

    async def members(self, req: Envelope) -> StatusMembersReply:
        cfg = self._ctx.config
        return StatusMembersReply(
            server_name=f"{cfg.name}.{cfg.region}",
            server_region=cfg.region,
            server_dc=cfg.datacenter,
            members=tuple(server_member(m) for m in self._members()),
        )

    async def regions(self, req: Envelope) -> StatusRegionsReply:
        found = {self._ctx.config.region}
        found |= {
            m.tags["region"]
            for m in self._members()
            if m.tags.get("role") == "nomad" and m.tags.get("region")
        }
        return StatusRegionsReply(regions=tuple(sorted(found)))
