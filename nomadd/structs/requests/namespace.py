"""``Namespace.*`` and ``NodePool.*`` RPCs, and their Raft entries (Nomad's namespace and node
pool endpoints). Each object kind has one upsert and one delete entry, so federation can replay
them into another region as they are."""

from __future__ import annotations

from dataclasses import dataclass

from nomadd.structs.job import JobListStub
from nomadd.structs.namespace import Namespace, NodePool
from nomadd.structs.node import NodeListStub
from nomadd.structs.requests import Envelope, Method, QueryMeta, WriteMeta

__all__ = [
    "NAMESPACE_DELETE",
    "NAMESPACE_GET",
    "NAMESPACE_LIST",
    "NAMESPACE_UPSERT",
    "NODE_POOL_DELETE",
    "NODE_POOL_GET",
    "NODE_POOL_JOBS",
    "NODE_POOL_LIST",
    "NODE_POOL_NODES",
    "NODE_POOL_UPSERT",
    "NamedDeleteEntry",
    "NamedDeleteRequest",
    "NamedGetRequest",
    "NamedListRequest",
    "NamespaceGetReply",
    "NamespaceListReply",
    "NamespaceUpsertEntry",
    "NamespaceUpsertRequest",
    "NodePoolGetReply",
    "NodePoolJobsReply",
    "NodePoolListReply",
    "NodePoolNodesReply",
    "NodePoolUpsertEntry",
    "NodePoolUpsertRequest",
    "WriteReply",
]


# ---- requests ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class NamespaceUpsertRequest(Envelope):
    namespaces: tuple[Namespace, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class NodePoolUpsertRequest(Envelope):
    pools: tuple[NodePool, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class NamedDeleteRequest(Envelope):
    """Delete the namespaces (or node pools) called ``names``."""

    names: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class NamedGetRequest(Envelope):
    """Read one namespace (or node pool) by ``name``; for a pool's nodes and jobs too."""

    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class NamedListRequest(Envelope):
    prefix: str = ""


# ---- replies -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class WriteReply:
    meta: WriteMeta


@dataclass(frozen=True, slots=True, kw_only=True)
class NamespaceGetReply:
    meta: QueryMeta
    namespace: Namespace | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NamespaceListReply:
    meta: QueryMeta
    namespaces: tuple[Namespace, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class NodePoolGetReply:
    meta: QueryMeta
    pool: NodePool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NodePoolListReply:
    meta: QueryMeta
    pools: tuple[NodePool, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class NodePoolNodesReply:
    meta: QueryMeta
    nodes: tuple[NodeListStub, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class NodePoolJobsReply:
    meta: QueryMeta
    jobs: tuple[JobListStub, ...] = ()


# ---- Raft entries --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class NamespaceUpsertEntry:
    """``NAMESPACE_UPSERT``: the namespaces as given; the FSM sets their indexes."""

    namespaces: tuple[Namespace, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class NodePoolUpsertEntry:
    """``NODE_POOL_UPSERT``."""

    pools: tuple[NodePool, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class NamedDeleteEntry:
    """``NAMESPACE_DELETE`` / ``NODE_POOL_DELETE``: all or none of ``names`` are deleted.
    ``region`` (the proposer's) only words a refusal."""

    names: tuple[str, ...] = ()
    region: str = ""


# ---- methods -------------------------------------------------------------------------------

NAMESPACE_UPSERT = Method("Namespace.UpsertNamespaces", NamespaceUpsertRequest, WriteReply)
NAMESPACE_DELETE = Method("Namespace.DeleteNamespaces", NamedDeleteRequest, WriteReply)
NAMESPACE_GET = Method("Namespace.GetNamespace", NamedGetRequest, NamespaceGetReply)
NAMESPACE_LIST = Method("Namespace.ListNamespaces", NamedListRequest, NamespaceListReply)
NODE_POOL_UPSERT = Method("NodePool.UpsertNodePools", NodePoolUpsertRequest, WriteReply)
NODE_POOL_DELETE = Method("NodePool.DeleteNodePools", NamedDeleteRequest, WriteReply)
NODE_POOL_GET = Method("NodePool.GetNodePool", NamedGetRequest, NodePoolGetReply)
NODE_POOL_LIST = Method("NodePool.List", NamedListRequest, NodePoolListReply)
NODE_POOL_NODES = Method("NodePool.ListNodes", NamedGetRequest, NodePoolNodesReply)
NODE_POOL_JOBS = Method("NodePool.ListJobs", NamedGetRequest, NodePoolJobsReply)
