"""``Namespace.*`` and ``NodePool.*`` RPCs (Nomad's namespace_endpoint.go, node_pool_endpoint.go).

Writes are validated here (400 listing every problem, worded as Nomad's) and proposed as one
entry each; the FSM may still refuse a delete of an object in use, and that refusal is answered
as a 400 carrying Nomad's message. Namespace reads show only the namespaces the caller's token
may see (any capability in them), as Nomad's ``ListNamespaces`` does.
"""

from __future__ import annotations

from nomadd.rpc import RPCRegistry
from nomadd.server.context import ServerContext
from nomadd.server.state import store_jobs, store_namespaces, store_nodes, store_summaries
from nomadd.server.state.store import StateSnapshot
from nomadd.structs.errors import NotFoundError, PermissionDeniedError, ValidationError
from nomadd.structs.job import JobListStub
from nomadd.structs.messages import MessageType
from nomadd.structs.namespace import (
    ALL_NODE_POOL,
    Namespace,
    NodePool,
    validate_namespace,
    validate_node_pool,
)
from nomadd.structs.node import NodeListStub
from nomadd.structs.requests import WriteMeta
from nomadd.structs.requests.namespace import (
    NAMESPACE_DELETE,
    NAMESPACE_GET,
    NAMESPACE_LIST,
    NAMESPACE_UPSERT,
    NODE_POOL_DELETE,
    NODE_POOL_GET,
    NODE_POOL_JOBS,
    NODE_POOL_LIST,
    NODE_POOL_NODES,
    NODE_POOL_UPSERT,
    NamedDeleteEntry,
    NamedDeleteRequest,
    NamedGetRequest,
    NamedListRequest,
    NamespaceGetReply,
    NamespaceListReply,
    NamespaceUpsertEntry,
    NamespaceUpsertRequest,
    NodePoolGetReply,
    NodePoolJobsReply,
    NodePoolListReply,
    NodePoolNodesReply,
    NodePoolUpsertEntry,
    NodePoolUpsertRequest,
    WriteReply,
)

__all__ = ["NamespaceEndpoint"]

_NS_TABLES = (store_namespaces.NAMESPACES_TABLE,)
_POOL_TABLES = (store_namespaces.NODE_POOLS_TABLE, store_nodes.TABLE)


def _refused(message: str) -> None:
    if not message:
        return
    if message.endswith("not found"):
        raise NotFoundError(message)
    raise ValidationError(message)


class NamespaceEndpoint:
    def __init__(self, ctx: ServerContext) -> None:
        self._ctx = ctx

    def register(self, registry: RPCRegistry) -> None:
        registry.register(NAMESPACE_UPSERT, self.upsert_namespaces, kind="write")
        registry.register(NAMESPACE_DELETE, self.delete_namespaces, kind="write")
        registry.register(NAMESPACE_GET, self.get_namespace, kind="read")
        registry.register(NAMESPACE_LIST, self.list_namespaces, kind="read")
        registry.register(NODE_POOL_UPSERT, self.upsert_pools, kind="write")
        registry.register(NODE_POOL_DELETE, self.delete_pools, kind="write")
        registry.register(NODE_POOL_GET, self.get_pool, kind="read")
        registry.register(NODE_POOL_LIST, self.list_pools, kind="read")
        registry.register(NODE_POOL_NODES, self.pool_nodes, kind="read")
        registry.register(NODE_POOL_JOBS, self.pool_jobs, kind="read")

    async def _write(self, msg_type: MessageType, entry: object) -> WriteReply:
        """Propose ``entry``; the FSM's refusal (nothing written) is the caller's error."""
        result, index = await self._ctx.propose(msg_type, entry)
        _refused(str(result))
        return WriteReply(meta=WriteMeta(index=index))

    # ---- namespaces --------------------------------------------------------------------------
    async def upsert_namespaces(self, req: NamespaceUpsertRequest) -> WriteReply:
        if not req.namespaces:
            raise ValidationError("must specify at least one namespace")
        for ns in req.namespaces:
            errs = validate_namespace(ns)
            if errs:
                raise ValidationError(f'Invalid namespace "{ns.name}": ' + "; ".join(errs))
        entry = NamespaceUpsertEntry(namespaces=req.namespaces)
        return await self._write(MessageType.NAMESPACE_UPSERT, entry)

    async def delete_namespaces(self, req: NamedDeleteRequest) -> WriteReply:
        if not req.names:
            raise ValidationError("must specify at least one namespace to delete")
        if "default" in req.names:
            raise ValidationError("can not delete default namespace")
        result, index = await self._ctx.propose(
            MessageType.NAMESPACE_DELETE, NamedDeleteEntry(names=req.names)
        )
        _refused(str(result))
        return WriteReply(meta=WriteMeta(index=index))

    async def get_namespace(self, req: NamedGetRequest) -> NamespaceGetReply:
        acl = await self._ctx.acl.resolve(req.auth_token)
        if not acl.allow_namespace(req.name):
            raise PermissionDeniedError("Permission denied")

        def fn(snap: StateSnapshot) -> Namespace | None:
            return store_namespaces.get_namespace(snap, req.name)

        ns, meta = await self._ctx.blocking.query(req, _NS_TABLES, fn)
        return NamespaceGetReply(meta=meta, namespace=ns)

    async def list_namespaces(self, req: NamedListRequest) -> NamespaceListReply:
        acl = await self._ctx.acl.resolve(req.auth_token)

        def fn(snap: StateSnapshot) -> tuple[Namespace, ...]:
            found = store_namespaces.list_namespaces(snap, req.prefix)
            return tuple(ns for ns in found if acl.allow_namespace(ns.name))

        found, meta = await self._ctx.blocking.query(req, _NS_TABLES, fn)
        return NamespaceListReply(meta=meta, namespaces=found)

    # ---- node pools --------------------------------------------------------------------------
    async def upsert_pools(self, req: NodePoolUpsertRequest) -> WriteReply:
        if not req.pools:
            raise ValidationError("must specify at least one node pool")
        for pool in req.pools:
            errs = validate_node_pool(pool)
            if errs:
                raise ValidationError(f'invalid node pool "{pool.name}": ' + "; ".join(errs))
        return await self._write(MessageType.NODE_POOL_UPSERT, NodePoolUpsertEntry(pools=req.pools))

    async def delete_pools(self, req: NamedDeleteRequest) -> WriteReply:
        if not req.names:
            raise ValidationError("must specify at least one node pool to delete")
        if "" in req.names:
            raise ValidationError("node pool name is empty")
        entry = NamedDeleteEntry(names=req.names, region=self._ctx.config.region)
        return await self._write(MessageType.NODE_POOL_DELETE, entry)

    async def get_pool(self, req: NamedGetRequest) -> NodePoolGetReply:
        def fn(snap: StateSnapshot) -> NodePool | None:
            return store_namespaces.get_pool(snap, req.name)

        pool, meta = await self._ctx.blocking.query(req, _POOL_TABLES, fn)
        return NodePoolGetReply(meta=meta, pool=pool)

    async def list_pools(self, req: NamedListRequest) -> NodePoolListReply:
        def fn(snap: StateSnapshot) -> tuple[NodePool, ...]:
            return tuple(store_namespaces.list_pools(snap, req.prefix))

        pools, meta = await self._ctx.blocking.query(req, _POOL_TABLES, fn)
        return NodePoolListReply(meta=meta, pools=pools)

    async def pool_nodes(self, req: NamedGetRequest) -> NodePoolNodesReply:
        def fn(snap: StateSnapshot) -> tuple[NodeListStub, ...] | None:
            if store_namespaces.get_pool(snap, req.name) is None:
                return None
            nodes = store_nodes.list_nodes(snap)
            return tuple(n.stub() for n in nodes if req.name == ALL_NODE_POOL or n.node_pool == req.name)

        nodes, meta = await self._ctx.blocking.query(req, (*_POOL_TABLES, store_nodes.TABLE), fn)
        if nodes is None:
            raise NotFoundError("node pool not found")
        return NodePoolNodesReply(meta=meta, nodes=nodes)

    async def pool_jobs(self, req: NamedGetRequest) -> NodePoolJobsReply:
        def fn(snap: StateSnapshot) -> tuple[JobListStub, ...] | None:
            if store_namespaces.get_pool(snap, req.name) is None:
                return None
            out = []
            for job in store_jobs.list_jobs(snap, req.namespace):
                if req.name == ALL_NODE_POOL or job.node_pool == req.name:
                    job = store_summaries.with_status(snap, job)
                    out.append(job.stub(store_summaries.job_summary(snap, job)))
            return tuple(out)

        jobs, meta = await self._ctx.blocking.query(req, (*_POOL_TABLES, store_jobs.TABLE), fn)
        if jobs is None:
            raise NotFoundError("node pool not found")
        return NodePoolJobsReply(meta=meta, jobs=jobs)
