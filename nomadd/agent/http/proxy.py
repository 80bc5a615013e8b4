"""Stream one HTTP request through to another agent and its answer back (chunk by chunk)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web

from nomadd.structs.errors import RPCError

if TYPE_CHECKING:
    from nomadd.agent.agent import Agent

__all__ = ["FORWARD_TIMEOUT_S", "PROXIED_HEADER", "proxy"]

FORWARD_TIMEOUT_S = 10.0  # connecting to the other agent
# Set on a forwarded request; such a request is never forwarded again (it breaks loops; it grants
# nothing).
PROXIED_HEADER = "X-Nomadd-Proxied"


async def proxy(
    agent: Agent, req: web.Request, addr: str, what: str, headers: dict[str, str] | None = None
) -> web.StreamResponse:
    """Send ``req`` (method, path and query, body) to the agent at ``addr`` (``what`` names it in
    errors) with ``headers`` and :data:`PROXIED_HEADER`, and stream its answer back."""
    tls = agent.tls
    url = f"{'https' if tls is not None else 'http'}://{addr}{req.path_qs}"
    body = await req.read() if req.can_read_body else None
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=FORWARD_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        try:
            async with session.request(
                req.method,
                url,
                data=body,
                headers={**(headers or {}), PROXIED_HEADER: "1"},
                ssl=tls.peer if tls is not None else True,
            ) as up:
                resp = web.StreamResponse(status=up.status)
                resp.content_type = up.content_type
                await resp.prepare(req)
                async for chunk in up.content.iter_any():
                    await resp.write(chunk)
                await resp.write_eof()
                return resp
        except aiohttp.ClientError as err:
            raise RPCError(f"forwarding to {what} {addr} failed: {err}") from err
