"""nomadd's service catalog (Nomad's native service discovery, docs/services.md):
``/v1/services``, ``/v1/service/:name``, ``DELETE /v1/service/:name/:id`` and
``/v1/allocation/:id/services`` (Nomad's service_registration_endpoint.go)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from nomadd.agent.http.internal_endpoint import call, envelope, query_result, write_result
from nomadd.structs.codec import to_api
from nomadd.structs.errors import UnknownAllocError
from nomadd.structs.requests.services import (
    ALLOC_SERVICES,
    SERVICE_DELETE,
    SERVICE_GET,
    SERVICE_LIST,
    ServiceAllocRequest,
    ServiceDeleteRequest,
    ServiceGetRequest,
    ServiceListRequest,
)

if TYPE_CHECKING:
    from nomadd.agent.agent import Agent
    from nomadd.agent.http.server import Router


async def list_services(agent: Agent, req: web.Request) -> object:
    reply = await call(agent, SERVICE_LIST, ServiceListRequest(**envelope(req)))
    by_ns: dict[str, list[dict[str, object]]] = {}
    for stub in reply.services:
        by_ns.setdefault(stub.namespace, []).append(
            {"ServiceName": stub.service_name, "Tags": list(stub.tags)}
        )
    return query_result(reply.meta, [{"Namespace": ns, "Services": s} for ns, s in by_ns.items()])


async def get_service(agent: Agent, req: web.Request) -> object:
    request = ServiceGetRequest(service_name=req.match_info["name"], **envelope(req))
    reply = await call(agent, SERVICE_GET, request)
    return query_result(reply.meta, [to_api(r) for r in reply.registrations])


async def delete_service(agent: Agent, req: web.Request) -> object:
    request = ServiceDeleteRequest(
        service_name=req.match_info["name"], id=req.match_info["id"], **envelope(req)
    )
    reply = await call(agent, SERVICE_DELETE, request)
    return write_result(reply.meta, None)


async def alloc_services(agent: Agent, req: web.Request) -> object:
    reply = await call(
        agent, ALLOC_SERVICES, ServiceAllocRequest(alloc_id=req.match_info["id"], **envelope(req))
    )
    if not reply.found:
        raise UnknownAllocError("alloc not found")
    return query_result(reply.meta, [to_api(r) for r in reply.registrations])


def register(router: Router) -> None:
    router.add("GET", "/v1/services", list_services)
    router.add("GET", "/v1/service/{name}", get_service)
    router.add("DELETE", "/v1/service/{name}/{id}", delete_service)
    router.add("GET", "/v1/allocation/{id}/services", alloc_services)
