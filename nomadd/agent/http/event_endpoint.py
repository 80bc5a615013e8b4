"""``GET /v1/event/stream``: Nomad's event stream (``command/agent/event_endpoint.go``).

Newline-delimited JSON over a chunked response: one ``{"Index":N,"Events":[...]}`` line per
Raft index with matching events, ``{}`` when nothing was sent for :data:`HEARTBEAT_S`. Query:
``topic=Topic[:key]`` (repeated; no topic: everything), ``index=`` (first index wanted; 0: the
buffered backlog), ``namespace=`` (``*``: all). The token must be allowed every topic it asks for
(Nomad's ``aclAllowsSubscription``); a token that loses that right (deleted, or a policy or role
changed) has its stream closed. When the server closes a subscription (the reader fell
``event_buffer_size`` indexes behind, or the state was restored) the last line is
``{"Error":"..."}`` and the response ends. Served by every server from its own FSM (followers
too); a client-only agent streams from one of its servers (docs/events.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import TYPE_CHECKING

from aiohttp import web
from multidict import MultiMapping

from nomadd.agent.http.acl_rules import token_of
from nomadd.agent.http.proxy import PROXIED_HEADER, proxy
from nomadd.agent.http.server import parse_uint64
from nomadd.server.acl.resolver import ERR_PERMISSION_DENIED
from nomadd.server.events import (
    EventBroker,
    SubscribeRequest,
    Subscription,
    SubscriptionClosedError,
    acl_allows_subscription,
)
from nomadd.structs.errors import (
    NomaddError,
    NotImplementedForModeError,
    PermissionDeniedError,
    ValidationError,
)

if TYPE_CHECKING:
    from nomadd.agent.agent import Agent
    from nomadd.agent.http.server import Router

logger = logging.getLogger(__name__)

__all__ = ["HEARTBEAT_S", "parse_subscribe_request", "register"]

HEARTBEAT_S = 10.0  # Nomad's event stream heartbeat
ERROR_FRAME_TIMEOUT_S = 1.0  # how long a closed subscription's last line may take to write
_ACL_TOPICS = frozenset({"ACLToken", "ACLPolicy", "ACLRole"})


def parse_subscribe_request(query: MultiMapping[str]) -> SubscribeRequest:
    """``?topic= &index= &namespace=`` as Nomad parses them (400 on a malformed value). A topic
    nomadd makes no events for is accepted, as Nomad does (it needs a management token)."""
    topics: dict[str, tuple[str, ...]] = {}
    for raw in query.getall("topic", []):
        parts = raw.split(":")
        if len(parts) > 2 or not parts[0]:
            raise ValidationError(f"Invalid topic query: invalid key value pair for topic: {raw[:64]}")
        topic, key = (parts[0], parts[1]) if len(parts) == 2 else (raw, "*")
        topics[topic] = (*topics.get(topic, ()), key or "*")
    index = parse_uint64("index", query.get("index", "") or "0")
    return SubscribeRequest(
        topics=topics or {"*": ("*",)}, index=index, namespace=query.get("namespace", "") or "default"
    )


def _broker(agent: Agent) -> EventBroker | None:
    return agent.server.fsm.events if agent.server is not None else None


async def _forward(agent: Agent, req: web.Request) -> web.StreamResponse:
    """A client-only agent streams from one of its servers, with the caller's token (Nomad's
    client forwards the Event.Stream RPC the same way)."""
    servers = agent.client.server_list.servers() if agent.client is not None else []
    if not servers or req.headers.get(PROXIED_HEADER) == "1":
        raise NotImplementedForModeError("event stream is served by servers: no server known")
    headers = {k: v for k in ("X-Nomad-Token", "Authorization") if (v := req.headers.get(k))}
    return await proxy(agent, req, servers[0], "server", headers)


async def _check(agent: Agent, secret: str, req: SubscribeRequest) -> None:
    acl = await agent.acl.resolve(secret)  # unknown or expired token → 403, malformed → 400
    if not acl_allows_subscription(acl, req):
        raise PermissionDeniedError(ERR_PERMISSION_DENIED)


async def event_stream(agent: Agent, req: web.Request) -> object:
    sub_req = parse_subscribe_request(req.query)
    broker = _broker(agent)
    if broker is None:
        return await _forward(agent, req)
    secret = token_of(req)
    await _check(agent, secret, sub_req)
    sub = broker.subscribe(sub_req)
    try:
        resp = web.StreamResponse(status=200, headers={"Cache-Control": "no-cache"})
        resp.content_type = "application/json"
        resp.enable_chunked_encoding()
        await resp.prepare(req)
        pump = asyncio.ensure_future(_pump(agent, secret, sub, resp))
        await asyncio.wait({pump, sub.closed}, return_when=asyncio.FIRST_COMPLETED)
        if not pump.done():  # closed by the server while the reader was stalled
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
        closed = pump.exception() if not pump.cancelled() else None
        if isinstance(closed, ConnectionError):
            logger.debug("event stream closed by the reader")
            return resp
        if closed is not None and not isinstance(closed, (SubscriptionClosedError, NomaddError)):
            raise closed
        reason = str(closed) if closed is not None else (sub.error or "")
        await _finish(req, resp, reason)
        return resp
    finally:
        sub.close()


async def _pump(agent: Agent, secret: str, sub: Subscription, resp: web.StreamResponse) -> None:
    """Write the subscription's frames until it is closed (raises SubscriptionClosedError)."""
    while True:
        batches = await sub.next(HEARTBEAT_S)
        if not batches:
            await resp.write(b"{}\n")
            continue
        lines = [line for b in batches if (line := b.frame(sub.req)) is not None]
        if lines:
            await resp.write("".join(lines).encode())
        if secret and agent.acl.enabled and any(e.topic in _ACL_TOPICS for b in batches for e in b.events):
            try:
                await _check(agent, secret, sub.req)
            except NomaddError as err:
                reason = f"subscription closed: token no longer allowed ({err})"
                raise SubscriptionClosedError(reason) from None


async def _finish(req: web.Request, resp: web.StreamResponse, reason: str) -> None:
    """The closing ``{"Error": ...}`` line, if the reader takes it within a second; then the
    connection ends either way (a stalled reader is cut off)."""
    logger.debug("event stream closed reason=%r", reason)
    try:
        async with asyncio.timeout(ERROR_FRAME_TIMEOUT_S):
            if reason:
                await resp.write(json.dumps({"Error": reason}).encode() + b"\n")
            await resp.write_eof()
    except (TimeoutError, ConnectionError):
        if req.transport is not None:
            req.transport.abort()


def register(router: Router) -> None:
    router.add("GET", "/v1/event/stream", event_stream)
