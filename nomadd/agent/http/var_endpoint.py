"""Nomad Variables: ``GET /v1/vars?prefix=``, ``GET|PUT|DELETE /v1/var/:path`` (``?cas=``).

A check-and-set conflict answers 409 with the current variable as JSON (Nomad's shape), or
``null`` when it does not exist.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING

from aiohttp import web

from nomadd.agent.http.internal_endpoint import call, envelope, query_result
from nomadd.agent.http.server import parse_query_options
from nomadd.structs.codec import to_api
from nomadd.structs.errors import NotFoundError, ValidationError
from nomadd.structs.requests.variables import (
    VARIABLES_APPLY,
    VARIABLES_LIST,
    VARIABLES_READ,
    VariablesApplyReply,
    VariablesApplyRequest,
    VariablesListRequest,
    VariablesReadRequest,
    VarOp,
)

if TYPE_CHECKING:
    from nomadd.agent.agent import Agent
    from nomadd.agent.http.server import Router


def _cas(value: str | None) -> int | None:
    """``?cas=``: absent or empty means no check."""
    if value is None or value == "":
        return None
    try:
        cas = int(value)
    except ValueError:
        raise ValidationError(f"invalid cas value {value!r}") from None
    if cas < 0:
        raise ValidationError("cas must not be negative")
    return cas


def _items(value: object) -> Mapping[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationError("variable items must be a non-empty map of strings")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ValidationError("variable items must be a map of strings to strings")
    return value


def _applied(reply: VariablesApplyReply) -> object:
    if reply.conflict:
        current = to_api(reply.var) if reply.var is not None else None
        return web.Response(status=409, text=json.dumps(current), content_type="application/json")
    return to_api(reply.var) if reply.var is not None else None


async def list_vars(agent: Agent, req: web.Request) -> object:
    opts = parse_query_options(req)
    reply = await call(agent, VARIABLES_LIST, VariablesListRequest(prefix=opts.prefix, **envelope(req, opts)))
    return query_result(reply.meta, [to_api(v) for v in reply.vars])


async def get_var(agent: Agent, req: web.Request) -> object:
    request = VariablesReadRequest(path=req.match_info["path"], **envelope(req))
    reply = await call(agent, VARIABLES_READ, request)
    if reply.var is None:
        raise NotFoundError("variable not found")
    return query_result(reply.meta, to_api(reply.var))


async def put_var(agent: Agent, req: web.Request) -> object:
    opts = parse_query_options(req)
    try:
        body = await req.json() if req.can_read_body else {}
    except ValueError as err:
        raise ValidationError(f"failed to parse variable: {err}") from None
    if not isinstance(body, dict):
        raise ValidationError("variable must be a JSON object")
    namespace = body.get("Namespace") or opts.namespace
    if not isinstance(namespace, str):
        raise ValidationError("variable namespace must be a string")
    env = envelope(req, opts)
    env["namespace"] = namespace
    request = VariablesApplyRequest(
        op=VarOp.SET,
        path=req.match_info["path"],
        items=_items(body.get("Items")),
        cas=_cas(req.query.get("cas")),
        **env,
    )
    return _applied(await call(agent, VARIABLES_APPLY, request))


async def delete_var(agent: Agent, req: web.Request) -> object:
    request = VariablesApplyRequest(
        op=VarOp.DELETE, path=req.match_info["path"], cas=_cas(req.query.get("cas")), **envelope(req)
    )
    return _applied(await call(agent, VARIABLES_APPLY, request))


def register(router: Router) -> None:
    router.add("GET", "/v1/vars", list_vars)
    router.add("GET", "/v1/var/{path:.+}", get_var)
    router.add("PUT", "/v1/var/{path:.+}", put_var)
    router.add("POST", "/v1/var/{path:.+}", put_var)
    router.add("DELETE", "/v1/var/{path:.+}", delete_var)
