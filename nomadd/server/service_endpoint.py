"""``ServiceRegistration.*`` RPCs and ``Alloc.GetServiceRegistrations`` (Nomad's
service_registration_endpoint.go): nomadd's own service catalog (docs/services.md).

``Upsert`` is called by a client node for one of ITS allocations (the internal RPC checks the
caller is that node; this endpoint checks the allocation is placed on it) with the allocation's
whole set of registrations; the server fills in what it knows itself (namespace, job, node,
datacenter), so a client can only register services for its own allocations.
"""

from __future__ import annotations

import dataclasses

from nomadd.rpc import RPCRegistry
from nomadd.server.context import ServerContext
from nomadd.server.state import store_allocs, store_nodes, store_services
from nomadd.server.state.store import StateSnapshot
from nomadd.structs.errors import NotFoundError, PermissionDeniedError, UnknownAllocError, ValidationError
from nomadd.structs.messages import MessageType
from nomadd.structs.requests import WriteMeta
from nomadd.structs.requests.services import (
    ALLOC_SERVICES,
    SERVICE_DELETE,
    SERVICE_GET,
    SERVICE_LIST,
    SERVICE_UPSERT,
    ServiceAllocRequest,
    ServiceDeleteEntry,
    ServiceDeleteRequest,
    ServiceGetRequest,
    ServiceListReply,
    ServiceListRequest,
    ServiceListStub,
    ServiceRegistrationsReply,
    ServiceUpsertEntry,
    ServiceUpsertRequest,
    ServiceWriteReply,
)
from nomadd.structs.services import ServiceRegistration

__all__ = ["ServiceEndpoint", "list_stubs"]

MAX_REGISTRATIONS_PER_ALLOC = 256


def list_stubs(regs: list[ServiceRegistration]) -> tuple[ServiceListStub, ...]:
    """One row per (namespace, service name), with the union of the instances' tags."""
    tags: dict[tuple[str, str], dict[str, None]] = {}
    for reg in regs:
        tags.setdefault((reg.namespace, reg.service_name), {}).update(dict.fromkeys(reg.tags))
    return tuple(
        ServiceListStub(namespace=ns, service_name=name, tags=tuple(t))
        for (ns, name), t in sorted(tags.items())
    )


class ServiceEndpoint:
    def __init__(self, ctx: ServerContext) -> None:
        self._ctx = ctx

    def register(self, registry: RPCRegistry) -> None:
        registry.register(SERVICE_UPSERT, self.upsert, kind="write")
        registry.register(SERVICE_DELETE, self.delete, kind="write")
        registry.register(SERVICE_LIST, self.list_services, kind="read")
        registry.register(SERVICE_GET, self.get_service, kind="read")
        registry.register(ALLOC_SERVICES, self.alloc_services, kind="read")

    async def upsert(self, req: ServiceUpsertRequest) -> ServiceWriteReply:
        if len(req.registrations) > MAX_REGISTRATIONS_PER_ALLOC:
            raise ValidationError(f"at most {MAX_REGISTRATIONS_PER_ALLOC} registrations per allocation")
        snap = self._ctx.store.snapshot()
        alloc = store_allocs.get_alloc(snap, req.alloc_id)
        if alloc is None:
            raise UnknownAllocError(f"alloc not found: {req.alloc_id}")
        if alloc.node_id != req.node_id:
            raise PermissionDeniedError(f"allocation {alloc.id} is not placed on node {req.node_id}")
        node = store_nodes.get(snap, alloc.node_id)
        regs = tuple(
            dataclasses.replace(
                r,
                namespace=alloc.namespace,
                node_id=alloc.node_id,
                datacenter=node.datacenter if node is not None else "",
                job_id=alloc.job_id,
                alloc_id=alloc.id,
                create_index=0,
                modify_index=0,
            )
            for r in req.registrations
        )
        for r in regs:
            if not r.id or not r.service_name or not 0 <= r.port <= 65535:
                raise ValidationError(f"registration {r.id!r}: missing ID or service name, or bad port")
        entry = ServiceUpsertEntry(alloc_id=alloc.id, registrations=regs)
        _, index = await self._ctx.propose(MessageType.SERVICE_REGISTRATION_UPSERT, entry)
        return ServiceWriteReply(meta=WriteMeta(index=index))

    async def delete(self, req: ServiceDeleteRequest) -> ServiceWriteReply:
        reg: ServiceRegistration | None = self._ctx.store.snapshot().get(store_services.TABLE, req.id)
        if reg is None or reg.namespace != req.namespace or reg.service_name != req.service_name:
            raise NotFoundError(f"service registration not found: {req.id}")
        entry = ServiceDeleteEntry(namespace=req.namespace, id=req.id)
        _, index = await self._ctx.propose(MessageType.SERVICE_REGISTRATION_DELETE, entry)
        return ServiceWriteReply(meta=WriteMeta(index=index))

    async def list_services(self, req: ServiceListRequest) -> ServiceListReply:
        def fn(snap: StateSnapshot) -> tuple[ServiceListStub, ...]:
            return list_stubs(store_services.list_all(snap, req.namespace))

        stubs, meta = await self._ctx.blocking.query(req, store_services.TABLES, fn)
        return ServiceListReply(meta=meta, services=stubs)

    async def get_service(self, req: ServiceGetRequest) -> ServiceRegistrationsReply:
        def fn(snap: StateSnapshot) -> tuple[ServiceRegistration, ...]:
            found = store_services.by_name(snap, req.namespace, req.service_name)
            return tuple(sorted(found, key=lambda r: (r.create_index, r.id)))

        regs, meta = await self._ctx.blocking.query(req, store_services.TABLES, fn)
        return ServiceRegistrationsReply(meta=meta, registrations=regs)

    async def alloc_services(self, req: ServiceAllocRequest) -> ServiceRegistrationsReply:
        def fn(snap: StateSnapshot) -> tuple[bool, tuple[ServiceRegistration, ...]]:
            found = store_allocs.get_alloc(snap, req.alloc_id) is not None
            return found, tuple(store_services.by_alloc(snap, req.alloc_id))

        (found, regs), meta = await self._ctx.blocking.query(
            req, (*store_services.TABLES, *store_allocs.TABLES), fn
        )
        return ServiceRegistrationsReply(meta=meta, registrations=regs, found=found)
