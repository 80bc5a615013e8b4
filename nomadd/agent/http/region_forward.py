"""Region forwarding at the HTTP edge: a request with ``?region=<another region>`` reaching a
server agent is sent as it is (method, path, query, body, the caller's token) to a server of
that region and its answer streamed back, so every endpoint — reads, writes, blocking queries,
log streams — behaves there as if called there (Nomad forwards each RPC with its region;
nomadd forwards the HTTP request, one place for every route). The receiving server sees its own
region and answers (forwarding to its leader or to a client as usual).

Servers are tried in random order, up to ``federation.FORWARD_ATTEMPTS`` that cannot be
reached (each with ``FORWARD_CONNECT_TIMEOUT_S`` to connect); none → 500 "No path to region".
A client-only agent has no gossip view: it passes the region in the RPC envelope to its
servers, which forward the RPC (``Server.rpc``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from nomadd.server.federation import FORWARD_ATTEMPTS, FORWARD_CONNECT_TIMEOUT_S
from nomadd.structs.errors import NoRegionPathError, RPCError

if TYPE_CHECKING:
    from nomadd.agent.agent import Agent

logger = logging.getLogger(__name__)

__all__ = ["REGION_FORWARDED_HEADER", "forward_region", "other_region"]

# Set on a forwarded request: a server receiving it for a region not its own answers
# "No path to region" instead of forwarding again (breaks loops between misconfigured servers).
REGION_FORWARDED_HEADER = "X-Nomadd-Region-Forwarded"
_REQUEST_HEADERS = ("X-Nomad-Token", "Authorization", "Content-Type", "Accept")
_REPLY_HEADERS = (
    "Content-Type",
    "Content-Encoding",
    "X-Nomad-Index",
    "X-Nomad-KnownLeader",
    "X-Nomad-LastContact",
)
# Answered by the agent that receives them, whatever the region (as Nomad's agent endpoints).
_LOCAL_PREFIXES = ("/v1/agent/", "/v1/internal/", "/v1/metrics", "/v1/regions")


def other_region(agent: Agent, req: web.Request) -> str:
    """The region ``req`` must be forwarded to ("" when this agent answers it)."""
    region = req.query.get("region", "")
    server = agent.server
    if not region or server is None or region == server.config.region:
        return ""
    if req.path.startswith(_LOCAL_PREFIXES):
        return ""
    return region


def _ssl(agent: Agent, region: str) -> dict[str, Any]:
    """Like the internal RPC: the agent's certificate, and with ``verify_server_hostname`` the
    other side must hold ``server.<region>.nomad``."""
    tls = agent.tls
    if tls is None:
        return {"ssl": True}
    out: dict[str, Any] = {"ssl": tls.outgoing}
    name = tls.server_name_of(region)
    if name is not None:
        out["server_hostname"] = name
    return out


async def forward_region(agent: Agent, req: web.Request, region: str) -> web.StreamResponse:
    assert agent.server is not None
    if req.headers.get(REGION_FORWARDED_HEADER):
        raise NoRegionPathError()
    addrs = agent.server.regions.candidates(region)
    body = await req.read() if req.can_read_body else None
    headers = {h: req.headers[h] for h in _REQUEST_HEADERS if h in req.headers}
    headers[REGION_FORWARDED_HEADER] = "1"
    tls = agent.tls
    scheme = "https" if tls is not None and tls.config.http else "http"
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=FORWARD_CONNECT_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout, auto_decompress=False) as session:
        for addr in addrs[:FORWARD_ATTEMPTS]:
            try:
                async with session.request(
                    req.method,
                    f"{scheme}://{addr}{req.path_qs}",
                    data=body,
                    headers=headers,
                    **_ssl(agent, region),
                ) as up:
                    resp = web.StreamResponse(status=up.status)
                    for h in _REPLY_HEADERS:
                        if h in up.headers:
                            resp.headers[h] = up.headers[h]
                    await resp.prepare(req)
                    try:
                        async for chunk in up.content.iter_any():
                            await resp.write(chunk)
                    except aiohttp.ClientError as err:  # the answer started: cut it short
                        logger.warning("region forward broke off region=%s addr=%s err=%r", region, addr, err)
                        return resp
                    await resp.write_eof()
                    return resp
            except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as err:
                logger.warning(
                    "region forward failed, trying another server region=%s addr=%s err=%r", region, addr, err
                )
            except aiohttp.ClientError as err:
                raise RPCError(f"forwarding to region {region} ({addr}) failed: {err!r}") from err
    raise NoRegionPathError()
