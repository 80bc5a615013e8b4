"""Namespaces and node pools (Nomad's command/agent/namespace_endpoint.go, node_pool_endpoint.go).

``GET /v1/namespaces``, ``PUT|POST /v1/namespace``, ``GET|PUT|POST|DELETE /v1/namespace/:name``;
``GET|PUT|POST /v1/node/pools``, ``GET|PUT|POST|DELETE /v1/node/pool/:name`` and
``GET /v1/node/pool/:name/nodes|jobs``. Registered before the node routes, whose ``/v1/node/:id``
would otherwise take ``/v1/node/pools``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from aiohttp import web

from nomadd.agent.http.internal_endpoint import call, envelope, query_result, write_result
from nomadd.agent.http.server import parse_query_options, read_body
from nomadd.helper.duration import parse_duration_ns
from nomadd.structs.codec import from_api, to_api
from nomadd.structs.errors import NotFoundError, ValidationError
from nomadd.structs.namespace import Namespace, NodePool
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
    NamedDeleteRequest,
    NamedGetRequest,
    NamedListRequest,
    NamespaceUpsertRequest,
    NodePoolUpsertRequest,
)

if TYPE_CHECKING:
    from nomadd.agent.agent import Agent
    from nomadd.agent.http.server import Router

__all__ = ["register"]

MAX_BODY_BYTES = 64 * 1024  # a namespace or node pool is a name, a description and some meta
T = TypeVar("T", Namespace, NodePool)


async def _named_body(req: web.Request, cls: type[T], what: str) -> T:
    body: dict[str, Any] = await read_body(req, max_bytes=MAX_BODY_BYTES, what=what.lower())
    name = req.match_info.get("name")
    if name is not None:
        if body.get("Name") in (None, ""):
            body = {**body, "Name": name}
        elif body["Name"] != name:
            raise ValidationError(f"{what} name does not match request path")
    if not isinstance(body.get("Name"), str) or not body["Name"]:
        raise ValidationError(f"{what} name is required")
    ttl = body.get("NodeIdentityTTL")
    if isinstance(ttl, str):  # Nomad's Go api sends the duration as text ("" for none)
        try:
            body = {**body, "NodeIdentityTTL": parse_duration_ns(ttl) if ttl else 0}
        except ValueError:
            raise ValidationError(f"{cls.__name__}.NodeIdentityTTL: invalid duration {ttl!r}") from None
    return from_api(cls, body, path=cls.__name__)


# ---- namespaces ------------------------------------------------------------------------------


async def list_namespaces(agent: Agent, req: web.Request) -> object:
    opts = parse_query_options(req)
    reply = await call(agent, NAMESPACE_LIST, NamedListRequest(prefix=opts.prefix, **envelope(req, opts)))
    return query_result(reply.meta, [to_api(ns) for ns in reply.namespaces])


async def get_namespace(agent: Agent, req: web.Request) -> object:
    reply = await call(agent, NAMESPACE_GET, NamedGetRequest(name=req.match_info["name"], **envelope(req)))
    if reply.namespace is None:
        raise NotFoundError("namespace not found")
    return query_result(reply.meta, to_api(reply.namespace))


async def put_namespace(agent: Agent, req: web.Request) -> object:
    ns = await _named_body(req, Namespace, "Namespace")
    reply = await call(agent, NAMESPACE_UPSERT, NamespaceUpsertRequest(namespaces=(ns,), **envelope(req)))
    return write_result(reply.meta, None)


async def delete_namespace(agent: Agent, req: web.Request) -> object:
    request = NamedDeleteRequest(names=(req.match_info["name"],), **envelope(req))
    return write_result((await call(agent, NAMESPACE_DELETE, request)).meta, None)


# ---- node pools ------------------------------------------------------------------------------


async def list_pools(agent: Agent, req: web.Request) -> object:
    opts = parse_query_options(req)
    reply = await call(agent, NODE_POOL_LIST, NamedListRequest(prefix=opts.prefix, **envelope(req, opts)))
    return query_result(reply.meta, [to_api(p) for p in reply.pools])


async def get_pool(agent: Agent, req: web.Request) -> object:
    reply = await call(agent, NODE_POOL_GET, NamedGetRequest(name=req.match_info["name"], **envelope(req)))
    if reply.pool is None:
        raise NotFoundError("node pool not found")
    return query_result(reply.meta, to_api(reply.pool))


async def put_pool(agent: Agent, req: web.Request) -> object:
    pool = await _named_body(req, NodePool, "Node pool")
    reply = await call(agent, NODE_POOL_UPSERT, NodePoolUpsertRequest(pools=(pool,), **envelope(req)))
    return write_result(reply.meta, None)


async def delete_pool(agent: Agent, req: web.Request) -> object:
    request = NamedDeleteRequest(names=(req.match_info["name"],), **envelope(req))
    return write_result((await call(agent, NODE_POOL_DELETE, request)).meta, None)


async def pool_nodes(agent: Agent, req: web.Request) -> object:
    reply = await call(agent, NODE_POOL_NODES, NamedGetRequest(name=req.match_info["name"], **envelope(req)))
    return query_result(reply.meta, [to_api(n) for n in reply.nodes])


async def pool_jobs(agent: Agent, req: web.Request) -> object:
    reply = await call(agent, NODE_POOL_JOBS, NamedGetRequest(name=req.match_info["name"], **envelope(req)))
    return query_result(reply.meta, [to_api(j) for j in reply.jobs])


def register(router: Router) -> None:
    router.add("GET", "/v1/namespaces", list_namespaces)
    for method in ("PUT", "POST"):
        router.add(method, "/v1/namespace", put_namespace)
        router.add(method, "/v1/namespace/{name}", put_namespace)
        router.add(method, "/v1/node/pools", put_pool)
        router.add(method, "/v1/node/pool/{name}", put_pool)
    router.add("GET", "/v1/namespace/{name}", get_namespace)
    router.add("DELETE", "/v1/namespace/{name}", delete_namespace)
    router.add("GET", "/v1/node/pools", list_pools)
    router.add("GET", "/v1/node/pool/{name}", get_pool)
    router.add("DELETE", "/v1/node/pool/{name}", delete_pool)
    router.add("GET", "/v1/node/pool/{name}/nodes", pool_nodes)
    router.add("GET", "/v1/node/pool/{name}/jobs", pool_jobs)
