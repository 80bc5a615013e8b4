"""``Node.*`` RPC requests and replies, and the node entries of the Raft log.

The client agent's calls (``Node.Register``, ``Node.UpdateStatus``, ``Node.GetClientAllocs``,
``Node.UpdateAlloc``) carry the node's ``secret_id`` as a field of the request; the server
checks it against the registered node.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from nomadd.structs.alloc import AllocClientStatus, TaskState
from nomadd.structs.deployment import AllocDeploymentStatus
from nomadd.structs.eval import Evaluation
from nomadd.structs.node import DrainStrategy, Node, NodeEligibility, NodeListStub, NodeStatus
from nomadd.structs.requests import Envelope, Method, QueryMeta, WriteMeta

__all__ = [
    "NODE_DEREGISTER",
    "NODE_GET",
    "NODE_GET_CLIENT_ALLOCS",
    "NODE_HEARTBEAT_STATS",
    "NODE_LIST",
    "NODE_REGISTER",
    "NODE_UPDATE_ALLOC",
    "NODE_UPDATE_DRAIN",
    "NODE_UPDATE_ELIGIBILITY",
    "NODE_UPDATE_STATUS",
    "AllocClientUpdate",
    "AllocClientUpdateEntry",
    "HeartbeatStatsReply",
    "HeartbeatStatsRequest",
    "NodeClientAllocsReply",
    "NodeDeregisterEntry",
    "NodeDeregisterReply",
    "NodeDeregisterRequest",
    "NodeDrainEntry",
    "NodeEligibilityEntry",
    "NodeGetReply",
    "NodeHeartbeatReply",
    "NodeListReply",
    "NodeListRequest",
    "NodeRegisterEntry",
    "NodeRegisterRequest",
    "NodeServerInfo",
    "NodeSpecificRequest",
    "NodeStatusEntry",
    "NodeUpdateAllocReply",
    "NodeUpdateAllocRequest",
    "NodeUpdateDrainRequest",
    "NodeUpdateEligibilityRequest",
    "NodeUpdateStatusRequest",
    "NodeWriteReply",
]


# ---- requests ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeRegisterRequest(Envelope):
    """Register (or re-register) ``node``; its ``secret_id`` identifies the client from now on."""

    node: Node


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeUpdateStatusRequest(Envelope):
    """The heartbeat (``status`` ready) or a status change; ``leave`` with ``down``: the node left."""

    node_id: str
    secret_id: str = ""
    status: NodeStatus
    leave: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeDeregisterRequest(Envelope):
    node_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeUpdateEligibilityRequest(Envelope):
    node_id: str
    eligibility: NodeEligibility


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeUpdateDrainRequest(Envelope):
    """Start a drain (``drain_strategy`` with ``deadline`` ns: -1 force now, 0 none, and
    ``ignore_system_jobs``; the server sets ``force_deadline`` and ``started_at``) or cancel it
    (``None``; ``mark_eligible`` makes the node eligible again)."""

    node_id: str
    drain_strategy: DrainStrategy | None = None
    mark_eligible: bool = False
    meta: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeSpecificRequest(Envelope):
    """A read about one node (``Node.GetNode``, ``Node.GetClientAllocs``: the node's own secret)."""

    node_id: str
    secret_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeListRequest(Envelope):
    prefix: str = ""
    os: bool = False  # add ``os.name`` to each row
    resources: bool = False  # add the node's resources to each row


@dataclass(frozen=True, slots=True, kw_only=True)
class HeartbeatStatsRequest(Envelope):
    """``Node.HeartbeatStats``: this server's heartbeat timers (local, not forwarded)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AllocClientUpdate:
    """One allocation's state as its client reports it; ``task_states`` None keeps the stored ones."""

    id: str
    client_status: AllocClientStatus
    client_description: str = ""
    task_states: Mapping[str, TaskState] | None = None
    deployment_status: AllocDeploymentStatus | None = None  # health decided by the client


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeUpdateAllocRequest(Envelope):
    """Status reports of allocations running on ``node_id`` (batched by the server)."""

    node_id: str
    secret_id: str = ""
    allocs: tuple[AllocClientUpdate, ...] = ()


# ---- replies -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeServerInfo:
    """A server a client may call (Nomad's ``NodeServerInfo``): its HTTP address."""

    rpc_advertise_addr: str
    datacenter: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeHeartbeatReply:
    """``Node.Register`` and ``Node.UpdateStatus``: when to heartbeat next and whom to ask.

    ``heartbeat_ttl`` is 0 for a node that went down (no timer); ``node_modify_index`` is set by
    a register only.
    """

    meta: WriteMeta
    heartbeat_ttl: float = 0.0
    servers: tuple[NodeServerInfo, ...] = ()
    leader_rpc_addr: str = ""
    num_nodes: int = 0
    node_modify_index: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeDeregisterReply:
    meta: WriteMeta
    node_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeWriteReply:
    """``Node.UpdateEligibility`` and ``Node.UpdateDrain`` (Nomad's ``NodeUpdateResponse``)."""

    meta: WriteMeta
    node_modify_index: int = 0
    eval_ids: tuple[str, ...] = ()
    eval_create_index: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeGetReply:
    """The node without its secret, or None."""

    meta: QueryMeta
    node: Node | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeListReply:
    meta: QueryMeta
    nodes: tuple[NodeListStub, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class HeartbeatStatsReply:
    enabled: bool = False
    active_timers: int = 0
    heartbeats: int = 0  # resets served since start
    expired: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeClientAllocsReply:
    """Every allocation placed on the node, terminal ones included: ID → AllocModifyIndex."""

    meta: QueryMeta
    allocs: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeUpdateAllocReply:
    """``meta.index`` is the Raft index the batch holding these updates was committed at."""

    meta: WriteMeta


# ---- Raft entries --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeRegisterEntry:
    """``NODE_REGISTER``; ``now_s`` (unix s) and ``timestamp`` (RFC 3339) made by the endpoint."""

    node: Node
    now_s: int = 0
    timestamp: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeStatusEntry:
    """``NODE_UPDATE_STATUS``: the new status and the node event that explains it (may be empty)."""

    node_id: str
    status: NodeStatus
    event: str = ""
    now_s: int = 0
    timestamp: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeDeregisterEntry:
    """``NODE_DEREGISTER``: the nodes are removed (purged)."""

    node_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeEligibilityEntry:
    """``NODE_UPDATE_ELIGIBILITY``."""

    node_id: str
    eligibility: NodeEligibility
    timestamp: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeDrainEntry:
    """``NODE_UPDATE_DRAIN``: start (``drain_strategy`` complete with its deadlines), cancel, or
    (``complete``, from the leader's drainer) finish a drain."""

    node_id: str
    drain_strategy: DrainStrategy | None = None
    mark_eligible: bool = False
    complete: bool = False
    meta: Mapping[str, str] = field(default_factory=dict)
    timestamp: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class AllocClientUpdateEntry:
    """``ALLOC_CLIENT_UPDATE``: a batch of client reports and the ``alloc-failure`` evaluations
    they cause, written together; ``time_ns`` is the allocations' new ``modify_time``."""

    allocs: tuple[AllocClientUpdate, ...] = ()
    evals: tuple[Evaluation, ...] = ()
    time_ns: int = 0


# ---- methods -------------------------------------------------------------------------------

NODE_REGISTER = Method("Node.Register", NodeRegisterRequest, NodeHeartbeatReply)
NODE_UPDATE_STATUS = Method("Node.UpdateStatus", NodeUpdateStatusRequest, NodeHeartbeatReply)
NODE_DEREGISTER = Method("Node.Deregister", NodeDeregisterRequest, NodeDeregisterReply)
NODE_UPDATE_ELIGIBILITY = Method("Node.UpdateEligibility", NodeUpdateEligibilityRequest, NodeWriteReply)
NODE_UPDATE_DRAIN = Method("Node.UpdateDrain", NodeUpdateDrainRequest, NodeWriteReply)
NODE_GET = Method("Node.GetNode", NodeSpecificRequest, NodeGetReply)
NODE_LIST = Method("Node.List", NodeListRequest, NodeListReply)
NODE_HEARTBEAT_STATS = Method("Node.HeartbeatStats", HeartbeatStatsRequest, HeartbeatStatsReply)
NODE_GET_CLIENT_ALLOCS = Method("Node.GetClientAllocs", NodeSpecificRequest, NodeClientAllocsReply)
NODE_UPDATE_ALLOC = Method("Node.UpdateAlloc", NodeUpdateAllocRequest, NodeUpdateAllocReply)
