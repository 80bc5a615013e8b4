"""The HTTP listener: Nomad's v1 API and the internal RPC, one route table, one ``wrap``.

Endpoint modules (``<noun>_endpoint.py``) each define ``register(router)``; handlers are
``async def h(agent, request) -> object`` and only parse → call → return. ``wrap`` turns the
result into JSON (``?pretty`` indents), a ``QueryResult`` into the ``X-Nomad-Index``,
``X-Nomad-KnownLeader`` and ``X-Nomad-LastContact`` headers, an ``RPCError`` into its status with a
plain-text body (4xx logged at DEBUG, 5xx at ERROR), any other exception into a 500 carrying a
request ID (one ERROR line with the traceback and the same ID), and logs one line per request.
Request bodies are read by ``read_body``/``read_json``: charset, size and nesting depth are
checked before parsing.
"""

from __future__ import annotations

import importlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from aiohttp import web

from nomadd.agent.http.acl_rules import authorize, filter_result, rule_for
from nomadd.agent.http.body import read_body, read_json
from nomadd.agent.http.paginate import LISTS, ListOrder, page
from nomadd.agent.http.region_forward import forward_region, other_region
from nomadd.helper.duration import parse_duration
from nomadd.server.acl.rules import object_namespace
from nomadd.structs.codec import INT64_MAX
from nomadd.structs.errors import RPCError, ValidationError
from nomadd.structs.requests.alloc import ALLOC_GET, AllocSpecificRequest
from nomadd.structs.requests.eval import EVAL_GET, EvalSpecificRequest

if TYPE_CHECKING:
    from nomadd.agent.agent import Agent

logger = logging.getLogger(__name__)

__all__ = [
    "ENDPOINT_MODULES",
    "MAX_BLOCKING_WAIT_S",
    "UNEXPECTED_MARKER",
    "HTTPServer",
    "Handler",
    "QueryOptions",
    "QueryResult",
    "Router",
    "parse_query_options",
    "parse_uint64",
    "read_body",
    "read_json",
]

# Nomad caps blocking queries at 300 s and waits that long when no ?wait is given.
MAX_BLOCKING_WAIT_S = 300.0
DEFAULT_BLOCKING_WAIT_S = 300.0

# On shutdown, in-flight requests (a blocking query can wait minutes) get this long to finish.
HTTP_SHUTDOWN_TIMEOUT_S = 1.0

# Endpoint modules, imported when the server starts; each has ``register(router)``.
ENDPOINT_MODULES: tuple[str, ...] = (
    "nomadd.agent.http.agent_endpoint",
    "nomadd.agent.http.metrics_endpoint",
    "nomadd.agent.http.internal_endpoint",
    "nomadd.agent.http.status_endpoint",
    "nomadd.agent.http.regions_endpoint",
    "nomadd.agent.http.volume_endpoint",
    "nomadd.agent.http.operator_endpoint",
    "nomadd.agent.http.snapshot_endpoint",
    "nomadd.agent.http.autopilot_endpoint",
    "nomadd.agent.http.keyring_endpoint",
    "nomadd.agent.http.gossip_keyring_endpoint",
    "nomadd.agent.http.members_endpoint",
    "nomadd.agent.http.var_endpoint",
    "nomadd.agent.http.acl_endpoint",
    "nomadd.agent.http.namespace_endpoint",  # before node_endpoint: /v1/node/pools is not a node
    "nomadd.agent.http.node_endpoint",
    "nomadd.agent.http.search_endpoint",
    "nomadd.agent.http.job_parse_endpoint",
    "nomadd.agent.http.client_endpoint",
    "nomadd.agent.http.client_fs_endpoint",
    "nomadd.agent.http.client_alloc_endpoint",
    "nomadd.agent.http.system_endpoint",
    "nomadd.agent.http.job_endpoint",
    "nomadd.agent.http.periodic_endpoint",
    "nomadd.agent.http.job_plan_endpoint",
    "nomadd.agent.http.eval_endpoint",
    "nomadd.agent.http.deployment_endpoint",
    "nomadd.agent.http.alloc_endpoint",
    "nomadd.agent.http.service_endpoint",
    "nomadd.agent.http.node_alloc_endpoint",
    "nomadd.agent.http.event_endpoint",
    "nomadd.agent.http.enterprise_endpoint",
)

Handler = Callable[["Agent", web.Request], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class QueryOptions:
    index: int = 0
    wait_s: float = DEFAULT_BLOCKING_WAIT_S
    stale: bool = False
    prefix: str = ""
    region: str = ""
    namespace: str = "default"


@dataclass(frozen=True, slots=True)
class QueryResult:
    """A read's value with the metadata that becomes Nomad's query headers."""

    value: object
    index: int
    known_leader: bool = True
    last_contact_ms: int = 0
    next_token: str = ""  # X-Nomad-NextToken: where the next page of a paginated list starts


def parse_uint64(name: str, raw: str) -> int:
    """A non-negative 64-bit integer query parameter (400 naming ``name`` otherwise)."""
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError(f"Failed to parse {name} parameter: {raw[:64]!r} is not an integer") from None
    if not 0 <= value <= INT64_MAX:
        raise ValidationError(f"{name} parameter out of range: must be between 0 and {INT64_MAX}")
    return value


def parse_query_options(req: web.Request) -> QueryOptions:
    """``?index= &wait= &stale &prefix= &region= &namespace=`` (400 on malformed values)."""
    q = req.query
    index = 0
    if "index" in q:
        index = parse_uint64("index", q["index"])
    wait = DEFAULT_BLOCKING_WAIT_S
    if "wait" in q:
        raw = q["wait"]
        try:
            wait = parse_duration(raw if not raw.isdigit() else raw + "s")
        except ValueError:
            raise ValidationError(f"Invalid wait time: {raw[:64]}") from None
    stale = "stale" in q and q["stale"].lower() not in ("false", "0")
    return QueryOptions(
        index=index,
        wait_s=min(max(wait, 0.0), MAX_BLOCKING_WAIT_S),
        stale=stale,
        prefix=q.get("prefix", ""),
        region=q.get("region", ""),
        namespace=q.get("namespace", "default") or "default",
    )


class Router:
    """Collects routes from endpoint modules and adds them, wrapped, to the aiohttp app."""

    def __init__(self, agent: Agent, app: web.Application) -> None:
        self.agent = agent
        self.app = app

    def add(self, method: str, path: str, handler: Handler) -> None:
        self.app.router.add_route(method, path, self.wrap(handler, method, path))

    def wrap(
        self, handler: Handler, method: str = "", path: str = ""
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """``handler`` behind the route's ACL rule (``acl_rules.ROUTE_RULES``) and Nomad's errors."""
        agent = self.agent
        rule = rule_for(method, path)
        order = LISTS.get((method, path))

        async def wrapped(req: web.Request) -> web.StreamResponse:
            start = time.monotonic()
            try:
                region = other_region(agent, req)
                if region:  # another region's servers answer it, ACL checks included
                    return await forward_region(agent, req, region)
                acl = await authorize(agent.acl, req, rule, lambda k, i, t: _object_namespace(agent, k, i, t))
                result = await handler(agent, req)
                if rule.filter and acl is not None:
                    if isinstance(result, QueryResult):
                        result = replace(result, value=filter_result(rule, acl, result.value))
                    else:
                        result = filter_result(rule, acl, result)
                if order is not None:
                    result = _paginate(order, req, result)
                resp = _respond(req, result)
            except RPCError as err:
                # 501 is an answer (an Enterprise endpoint, a server route on a client), not a fault
                level = logging.DEBUG if err.code < 500 or err.code == 501 else logging.ERROR
                logger.log(
                    level,
                    "request failed method=%s path=%s error=%r code=%d",
                    req.method,
                    req.path,
                    err.message,
                    err.code,
                )
                resp = web.Response(status=err.code, text=err.message, content_type="text/plain")
            except web.HTTPException:
                raise
            except ConnectionResetError as err:
                if req.transport is not None and not req.transport.is_closing():
                    resp = _unexpected(req, err)  # some other connection of the handler's
                else:  # the reader left a stream (events, logs, a file): nothing went wrong
                    logger.debug("request closed by the client method=%s path=%s", req.method, req.path)
                    resp = web.Response(status=499, text="client closed request")  # never sent
            except Exception as err:
                resp = _unexpected(req, err)
            if logger.isEnabledFor(logging.DEBUG):  # path_qs builds a string: not per request at INFO
                logger.debug(
                    "request complete method=%s path=%s duration=%.3fms",
                    req.method,
                    req.path_qs,
                    (time.monotonic() - start) * 1000,
                )
            return resp

        return wrapped


UNEXPECTED_MARKER = "request failed unexpectedly"
"""Starts the log line of an exception no handler expected; tests fail on any such line."""


def _unexpected(req: web.Request, err: Exception) -> web.Response:
    """The one path of an exception a handler did not expect: a 500 whose body carries a
    request ID and one ERROR line (with the traceback) carrying the same ID."""
    request_id = uuid.uuid4().hex[:16]
    logger.error(
        UNEXPECTED_MARKER + " method=%s path=%s request_id=%s error=%s",
        req.method,
        req.path[:256],
        request_id,
        type(err).__name__,
        exc_info=err,
    )
    text = f"Internal error (request ID {request_id}): {type(err).__name__}"
    return web.Response(status=500, text=text, content_type="text/plain")


async def _object_namespace(agent: Agent, kind: str, object_id: str, token: str) -> str | None:
    """The namespace of the allocation or evaluation (``kind``) ``object_id`` (an ID or a prefix)
    names, for its ACL check; ``None`` when it names none or several (the handler then answers).
    A client-only agent asks its servers with the caller's token (refused there unless the token
    may read the object)."""
    request: AllocSpecificRequest | EvalSpecificRequest
    runners = getattr(agent.client, "allocs", None) if agent.client is not None else None
    local = runners.get(object_id) if kind == "alloc" and runners is not None else None
    if local is not None:  # an allocation this client runs: its namespace is known here (Nomad's)
        return str(local.alloc.namespace)
    if kind == "alloc":
        request = AllocSpecificRequest(alloc_id=object_id, auth_token=token, allow_stale=True)
    else:
        request = EvalSpecificRequest(eval_id=object_id, auth_token=token, allow_stale=True)
    if agent.server is not None:
        return object_namespace(agent.server.store.snapshot(), request)
    if agent.client is None:
        return None
    if isinstance(request, AllocSpecificRequest):
        alloc = (await agent.client.call(ALLOC_GET, request)).alloc
        return alloc.namespace if alloc is not None else None
    ev = (await agent.client.call(EVAL_GET, request)).eval
    return ev.namespace if ev is not None else None


def _paginate(order: ListOrder, req: web.Request, result: object) -> object:
    """A list route's result (a :class:`QueryResult`, as every list is a blocking query) cut to
    the page ``?filter= &per_page= &next_token= &reverse=`` asks for."""
    if not isinstance(result, QueryResult) or not isinstance(result.value, list):
        return result
    items, next_token = page(order, req.query, result.value)
    return replace(result, value=items, next_token=next_token)


# Built once: json.dumps with any non-default argument builds an encoder per call.
_COMPACT = json.JSONEncoder(separators=(",", ":"))
_PRETTY = json.JSONEncoder(indent=4)


def _respond(req: web.Request, result: object) -> web.StreamResponse:
    if isinstance(result, web.StreamResponse):
        return result
    headers: dict[str, str] = {}
    if isinstance(result, QueryResult):
        headers["X-Nomad-Index"] = str(result.index)
        headers["X-Nomad-KnownLeader"] = "true" if result.known_leader else "false"
        headers["X-Nomad-LastContact"] = str(result.last_contact_ms)
        if result.next_token:
            headers["X-Nomad-NextToken"] = result.next_token
        result = result.value
    if result is None:
        return web.Response(status=200, headers=headers)
    pretty = "pretty" in req.query and req.query["pretty"].lower() not in ("false", "0")
    body = _PRETTY.encode(result) + "\n" if pretty else _COMPACT.encode(result)
    return web.Response(text=body, content_type="application/json", headers=headers)


@web.middleware
async def _nomad_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Plain-text bodies for aiohttp's own 404/405, as Nomad's mux answers."""
    try:
        return await handler(request)
    except web.HTTPMethodNotAllowed:
        return web.Response(status=405, text="Invalid method", content_type="text/plain")
    except web.HTTPNotFound:
        return web.Response(status=404, text="Invalid URL path", content_type="text/plain")


class HTTPServer:
    """aiohttp on ``addresses.http:ports.http``; ``start`` returns once the port accepts."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        from nomadd.agent.http.tls import require_rpc_certificate

        self.app = web.Application(
            middlewares=[_nomad_errors, require_rpc_certificate(lambda: agent.tls)],
            client_max_size=16 * 1024 * 1024,
        )
        self.router = Router(agent, self.app)
        for name in ENDPOINT_MODULES:
            importlib.import_module(name).register(self.router)
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        cfg = self.agent.config
        host = cfg.addresses.http if cfg.addresses else cfg.bind_addr
        self._runner = web.AppRunner(
            self.app, access_log=None, handle_signals=False, shutdown_timeout=HTTP_SHUTDOWN_TIMEOUT_S
        )
        await self._runner.setup()
        tls = self.agent.tls
        site = web.TCPSite(
            self._runner,
            host,
            cfg.ports.http,
            reuse_address=True,
            ssl_context=tls.listener if tls is not None and tls.config.http else None,
        )
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else cfg.ports.http
        logger.info("http server listening addr=%s:%d tls=%s", host, self.port, tls is not None)

    async def shutdown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
