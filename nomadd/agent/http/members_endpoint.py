"""The server parts of ``/v1/agent/*``: members, join, force-leave, health.

``/v1/agent/health`` reports the server part itself (ok when a leader is known, else ``no
leader``, HTTP 500) and asks the client, when there is one, through ``client.health() ->
(ok, message)`` if the client provides it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from nomadd.structs.codec import to_api
from nomadd.structs.errors import NotImplementedForModeError, ValidationError
from nomadd.structs.requests import Envelope
from nomadd.structs.requests.status import STATUS_MEMBERS

if TYPE_CHECKING:
    from nomadd.agent.agent import Agent
    from nomadd.agent.http.server import Router


def _server(agent: Agent) -> Any:
    if agent.server is None:
        raise NotImplementedForModeError("Server not enabled")
    return agent.server


async def members(agent: Agent, req: web.Request) -> object:
    reply = await _server(agent).rpc(STATUS_MEMBERS, Envelope())
    return {
        "ServerName": reply.server_name,
        "ServerRegion": reply.server_region,
        "ServerDC": reply.server_dc,
        "Members": [to_api(m) for m in reply.members],
    }


async def join(agent: Agent, req: web.Request) -> object:
    server = _server(agent)
    addrs = req.query.getall("address", [])
    if not addrs:
        raise ValidationError("missing address to join")
    try:
        n = await server.join(addrs)
    except Exception as err:
        return {"num_joined": 0, "error": str(err)}
    if n == 0:
        return {"num_joined": 0, "error": f"no server could be joined at {', '.join(addrs)}"}
    return {"num_joined": n, "error": ""}


async def force_leave(agent: Agent, req: web.Request) -> object:
    server = _server(agent)
    node = req.query.get("node", "")
    if not node:
        raise ValidationError("missing node to force leave")
    prune = req.query.get("prune", "").lower() in ("1", "true", "yes")
    result = await server.force_leave(node, prune=prune)
    if result.previous is None:
        raise ValidationError(f"no member named {node!r}")
    return {
        "Name": result.name,
        "Changed": result.changed,
        "Status": str(result.status) if result.status else "",
        "Message": result.message,
    }


async def health(agent: Agent, req: web.Request) -> object:
    wanted = req.query.getall("type", []) or [
        t for t, on in (("client", agent.client), ("server", agent.server)) if on is not None
    ]
    out: dict[str, dict[str, object]] = {}
    for kind in wanted:
        if kind == "server":
            if agent.server is None:
                out["server"] = {"ok": False, "message": "server not enabled"}
            elif agent.server.raft.leader() is None:
                out["server"] = {"ok": False, "message": "no leader"}
            else:
                out["server"] = {"ok": True, "message": "ok"}
        elif kind == "client":
            if agent.client is None:
                out["client"] = {"ok": False, "message": "client not enabled"}
            else:
                check = getattr(agent.client, "health", None)
                ok, msg = check() if check is not None else (True, "ok")
                out["client"] = {"ok": bool(ok), "message": str(msg)}
        else:
            raise ValidationError(f"unknown health type {kind!r}")
    status = 200 if all(v["ok"] for v in out.values()) else 500
    return web.Response(status=status, text=json.dumps(out), content_type="application/json")


def register(router: Router) -> None:
    router.add("GET", "/v1/agent/members", members)
    router.add("PUT", "/v1/agent/join", join)
    router.add("POST", "/v1/agent/join", join)
    router.add("PUT", "/v1/agent/force-leave", force_leave)
    router.add("POST", "/v1/agent/force-leave", force_leave)
    router.add("GET", "/v1/agent/health", health)
