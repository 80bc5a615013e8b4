"""``Status.*`` RPC replies (the requests carry only the envelope): leader, peers, ping,
members, regions. All are answered by the server that receives them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from nomadd.structs.requests import Envelope, Method

__all__ = [
    "STATUS_LEADER",
    "STATUS_MEMBERS",
    "STATUS_PEERS",
    "STATUS_PING",
    "STATUS_REGIONS",
    "ServerMember",
    "StatusLeaderReply",
    "StatusMembersReply",
    "StatusPeersReply",
    "StatusPingReply",
    "StatusRegionsReply",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerMember:
    """One member of the gossip pool (Nomad's ``ServerMember``; ``to_api`` is its JSON)."""

    name: str
    addr: str
    port: int
    tags: Mapping[str, str] = field(default_factory=dict)
    status: str = ""
    protocol_min: int = 1
    protocol_max: int = 5
    protocol_cur: int = 2
    delegate_min: int = 2
    delegate_max: int = 5
    delegate_cur: int = 4


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusLeaderReply:
    leader: str = ""  # the leader's Raft address, empty when none is known


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusPeersReply:
    peers: tuple[str, ...] = ()  # Raft addresses of the peer set


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusPingReply:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusMembersReply:
    server_name: str
    server_region: str
    server_dc: str
    members: tuple[ServerMember, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusRegionsReply:
    regions: tuple[str, ...] = ()


STATUS_LEADER = Method("Status.Leader", Envelope, StatusLeaderReply)
STATUS_PEERS = Method("Status.Peers", Envelope, StatusPeersReply)
STATUS_PING = Method("Status.Ping", Envelope, StatusPingReply)
STATUS_MEMBERS = Method("Status.Members", Envelope, StatusMembersReply)
STATUS_REGIONS = Method("Status.Regions", Envelope, StatusRegionsReply)
