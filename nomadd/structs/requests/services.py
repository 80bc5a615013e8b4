"""``ServiceRegistration.*`` RPCs and their Raft entries (Nomad's service_registration_endpoint.go).

A client node reports the whole set of registrations of one allocation (``Upsert``; an empty set
deregisters it), so a retried or reordered report converges on the latest set. API users list,
read and delete registrations.
"""

from __future__ import annotations

from dataclasses import dataclass

from nomadd.structs.requests import Envelope, Method, QueryMeta, WriteMeta
from nomadd.structs.services import ServiceRegistration

__all__ = [
    "ALLOC_SERVICES",
    "SERVICE_DELETE",
    "SERVICE_GET",
    "SERVICE_LIST",
    "SERVICE_UPSERT",
    "ServiceAllocRequest",
    "ServiceDeleteEntry",
    "ServiceDeleteRequest",
    "ServiceGetRequest",
    "ServiceListReply",
    "ServiceListRequest",
    "ServiceListStub",
    "ServiceRegistrationsReply",
    "ServiceUpsertEntry",
    "ServiceUpsertRequest",
    "ServiceWriteReply",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceUpsertRequest(Envelope):
    """A client's registrations for one of its allocations: the whole set, replacing the last."""

    node_id: str = ""
    alloc_id: str = ""
    registrations: tuple[ServiceRegistration, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceDeleteRequest(Envelope):
    service_name: str = ""
    id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceListRequest(Envelope):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceGetRequest(Envelope):
    service_name: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceAllocRequest(Envelope):
    alloc_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceListStub:
    """One row of ``GET /v1/services``: a service name and the union of its tags."""

    namespace: str = ""
    service_name: str = ""
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceListReply:
    meta: QueryMeta
    services: tuple[ServiceListStub, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceRegistrationsReply:
    meta: QueryMeta
    registrations: tuple[ServiceRegistration, ...] = ()
    found: bool = True  # Alloc.GetServiceRegistrations: whether the allocation exists


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceWriteReply:
    meta: WriteMeta


# ---- Raft entries --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceUpsertEntry:
    """SERVICE_REGISTRATION_UPSERT: the allocation's registrations become ``registrations``
    (indexes set by the FSM). Ignored when the allocation is unknown or client-terminal."""

    alloc_id: str = ""
    registrations: tuple[ServiceRegistration, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceDeleteEntry:
    """SERVICE_REGISTRATION_DELETE: one registration by namespace and ID."""

    namespace: str = ""
    id: str = ""


SERVICE_UPSERT = Method("ServiceRegistration.Upsert", ServiceUpsertRequest, ServiceWriteReply)
SERVICE_DELETE = Method("ServiceRegistration.DeleteByID", ServiceDeleteRequest, ServiceWriteReply)
SERVICE_LIST = Method("ServiceRegistration.List", ServiceListRequest, ServiceListReply)
SERVICE_GET = Method("ServiceRegistration.GetService", ServiceGetRequest, ServiceRegistrationsReply)
ALLOC_SERVICES = Method("Alloc.GetServiceRegistrations", ServiceAllocRequest, ServiceRegistrationsReply)
