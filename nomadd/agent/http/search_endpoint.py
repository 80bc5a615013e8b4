"""``POST|PUT /v1/search`` and ``/v1/search/fuzzy`` (Nomad's command/agent/search_endpoint.go).

Bodies: ``{"Prefix", "Context"}`` and ``{"Text", "Context"}``; the namespace is ``?namespace=``
or the body's ``Namespace``. Replies: ``{"Matches": {context: [...]}, "Truncations": {context:
bool}}``; a fuzzy match is ``{"ID", "Scope"}`` (``Scope`` left out when empty, as Nomad's
``omitempty``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from nomadd.agent.http.internal_endpoint import call, envelope, query_result
from nomadd.agent.http.server import read_body
from nomadd.structs.errors import ValidationError
from nomadd.structs.requests.search import (
    SEARCH_FUZZY,
    SEARCH_PREFIX,
    FuzzyMatch,
    FuzzySearchRequest,
    PrefixSearchRequest,
)

if TYPE_CHECKING:
    from nomadd.agent.agent import Agent
    from nomadd.agent.http.server import Router

__all__ = ["register"]

MAX_BODY_BYTES = 16 * 1024


def _string(body: dict[str, Any], key: str, default: str = "") -> str:
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise ValidationError(f"{key}: expected a string")
    if len(value) > 1024:
        raise ValidationError(f"{key}: longer than 1024 characters")
    return value


async def _request(req: web.Request) -> tuple[dict[str, Any], dict[str, Any]]:
    body = await read_body(req, max_bytes=MAX_BODY_BYTES, what="search request")
    env = envelope(req)
    env["namespace"] = _string(body, "Namespace") or env["namespace"]
    return body, env


def _fuzzy_api(match: FuzzyMatch) -> dict[str, Any]:
    out: dict[str, Any] = {"ID": match.id}
    if match.scope:
        out["Scope"] = list(match.scope)
    return out


async def prefix_search(agent: Agent, req: web.Request) -> object:
    body, env = await _request(req)
    request = PrefixSearchRequest(
        prefix=_string(body, "Prefix"), context=_string(body, "Context", "all"), **env
    )
    reply = await call(agent, SEARCH_PREFIX, request)
    matches = {ctx: list(ids) for ctx, ids in reply.matches.items()}
    return query_result(reply.meta, {"Matches": matches, "Truncations": dict(reply.truncations)})


async def fuzzy_search(agent: Agent, req: web.Request) -> object:
    body, env = await _request(req)
    request = FuzzySearchRequest(text=_string(body, "Text"), context=_string(body, "Context", "all"), **env)
    reply = await call(agent, SEARCH_FUZZY, request)
    matches = {ctx: [_fuzzy_api(m) for m in found] for ctx, found in reply.matches.items()}
    return query_result(reply.meta, {"Matches": matches, "Truncations": dict(reply.truncations)})


def register(router: Router) -> None:
    for method in ("PUT", "POST"):
        router.add(method, "/v1/search", prefix_search)
        router.add(method, "/v1/search/fuzzy", fuzzy_search)
