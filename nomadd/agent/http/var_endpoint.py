"""Nomad Variables: ``GET /v1/vars?prefix=``, ``GET|PUT|DELETE /v1/var/:path`` (``?cas=``).

A check-and-set conflict answers 409 with the current variable as JSON (Nomad's shape), or
``null`` when it does not exist.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from nomadd.agent.http.internal_endpoint import call_rpc, legacy_query_result, query_args
from nomadd.agent.http.server import parse_query_options
from nomadd.structs.errors import NotFoundError, ValidationError

if TYPE_CHECKING:
    from nomadd.agent.agent import Agent
    from nomadd.agent.http.server import Router


def _conflict(reply: dict[str, Any]) -> web.Response:
    return web.Response(status=409, text=json.dumps(reply.get("Var")), content_type="application/json")


async def list_vars(agent: Agent, req: web.Request) -> object:
    opts = parse_query_options(req)
    reply = await call_rpc(agent, "Variables.List", query_args(opts, Prefix=opts.prefix))
    return legacy_query_result(reply)


async def get_var(agent: Agent, req: web.Request) -> object:
    opts = parse_query_options(req)
    path = req.match_info["path"]
    reply = await call_rpc(agent, "Variables.Read", query_args(opts, Path=path))
    if reply.get("Value") is None:
        raise NotFoundError("variable not found")
    return legacy_query_result(reply)


async def put_var(agent: Agent, req: web.Request) -> object:
    opts = parse_query_options(req)
    path = req.match_info["path"]
    try:
        body = await req.json() if req.can_read_body else {}
    except ValueError as err:
        raise ValidationError(f"failed to parse variable: {err}") from None
    if not isinstance(body, dict):
        raise ValidationError("variable must be a JSON object")
    var = {"Namespace": body.get("Namespace") or opts.namespace, "Path": path}
    var["Items"] = body.get("Items")
    args = {"Op": "set", "Var": var, "CAS": req.query.get("cas")}
    reply = await call_rpc(agent, "Variables.Apply", args)
    if reply["Conflict"]:
        return _conflict(reply)
    return reply["Var"]


async def delete_var(agent: Agent, req: web.Request) -> object:
    opts = parse_query_options(req)
    var = {"Namespace": opts.namespace, "Path": req.match_info["path"]}
    args = {"Op": "delete", "Var": var, "CAS": req.query.get("cas")}
    reply = await call_rpc(agent, "Variables.Apply", args)
    if reply["Conflict"]:
        return _conflict(reply)
    return None


def register(router: Router) -> None:
    router.add("GET", "/v1/vars", list_vars)
    router.add("GET", "/v1/var/{path:.+}", get_var)
    router.add("PUT", "/v1/var/{path:.+}", put_var)
    router.add("POST", "/v1/var/{path:.+}", put_var)
    router.add("DELETE", "/v1/var/{path:.+}", delete_var)
