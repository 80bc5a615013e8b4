"""``Operator.*`` RPC requests and replies: the Raft configuration and removing a peer."""

from __future__ import annotations

from dataclasses import dataclass

from nomadd.structs.requests import Envelope, Method, QueryMeta, WriteMeta

__all__ = [
    "OPERATOR_RAFT_CONFIGURATION",
    "OPERATOR_REMOVE_PEER_BY_ADDRESS",
    "OPERATOR_REMOVE_PEER_BY_ID",
    "RaftConfigurationReply",
    "RaftPeerByAddressRequest",
    "RaftPeerByIDRequest",
    "RaftRemovePeerReply",
    "RaftServer",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class RaftServer:
    """One peer of the Raft configuration (Nomad's ``RaftServer``; ``to_api`` is its JSON)."""

    id: str
    node: str
    address: str
    leader: bool = False
    voter: bool = True
    raft_protocol: str = "3"


@dataclass(frozen=True, slots=True, kw_only=True)
class RaftPeerByAddressRequest(Envelope):
    address: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RaftPeerByIDRequest(Envelope):
    id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RaftConfigurationReply:
    """``meta.index`` is the answering server's applied Raft index."""

    meta: QueryMeta
    servers: tuple[RaftServer, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class RaftRemovePeerReply:
    meta: WriteMeta
    address: str  # the Raft address that was removed


OPERATOR_RAFT_CONFIGURATION = Method("Operator.RaftGetConfiguration", Envelope, RaftConfigurationReply)
OPERATOR_REMOVE_PEER_BY_ADDRESS = Method(
    "Operator.RaftRemovePeerByAddress", RaftPeerByAddressRequest, RaftRemovePeerReply
)
OPERATOR_REMOVE_PEER_BY_ID = Method("Operator.RaftRemovePeerByID", RaftPeerByIDRequest, RaftRemovePeerReply)
