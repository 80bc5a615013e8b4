"""``POST|PUT /v1/node/:id/drain`` (Nomad's node drain endpoint) → ``Node.UpdateDrain``.

Body ``{"DrainSpec": {"Deadline": <ns>, "IgnoreSystemJobs": bool} | null, "MarkEligible": bool,
"Meta": {}}`` (an empty body is ``{}``); a null ``DrainSpec`` cancels the drain. Answers
``{"NodeModifyIndex", "EvalIDs", "EvalCreateIndex"}`` with ``X-Nomad-Index``.
(``/v1/node/:id/allocations`` is served by ``node_endpoint``.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from nomadd.agent.http.internal_endpoint import call, envelope
from nomadd.agent.http.node_endpoint import node_write_result, optional_body
from nomadd.structs.errors import ValidationError
from nomadd.structs.node import DrainStrategy
from nomadd.structs.requests.node import NODE_UPDATE_DRAIN, NodeUpdateDrainRequest

if TYPE_CHECKING:
    from nomadd.agent.agent import Agent
    from nomadd.agent.http.server import Router

__all__ = ["register"]


def _strategy(spec: object) -> DrainStrategy | None:
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise ValidationError("DrainSpec must be an object or null")
    deadline = spec.get("Deadline") or 0
    if not isinstance(deadline, int) or isinstance(deadline, bool):
        raise ValidationError("DrainSpec.Deadline: expected integer nanoseconds")
    return DrainStrategy(deadline=deadline, ignore_system_jobs=bool(spec.get("IgnoreSystemJobs")))


def _meta(raw: object) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ValidationError("Meta: expected an object")
    return {str(k): str(v) for k, v in raw.items()}


async def drain(agent: Agent, req: web.Request) -> object:
    body = await optional_body(req)
    request = NodeUpdateDrainRequest(
        node_id=req.match_info["id"],
        drain_strategy=_strategy(body.get("DrainSpec")),
        mark_eligible=bool(body.get("MarkEligible")),
        meta=_meta(body.get("Meta")),
        **envelope(req),
    )
    return node_write_result(await call(agent, NODE_UPDATE_DRAIN, request))


def register(router: Router) -> None:
    router.add("POST", "/v1/node/{id}/drain", drain)
    router.add("PUT", "/v1/node/{id}/drain", drain)
