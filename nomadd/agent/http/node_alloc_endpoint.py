"""``POST|PUT /v1/node/:id/drain`` (Nomad's node drain endpoint).

Body ``{"DrainSpec": {"Deadline": <ns>, "IgnoreSystemJobs": bool} | null, "MarkEligible": bool,
"Meta": {}}``; a null ``DrainSpec`` cancels the drain. Answers
``{"NodeModifyIndex", "EvalIDs", "EvalCreateIndex", "Index"}`` with ``X-Nomad-Index``.
(``/v1/node/:id/allocations`` is served by ``agent/http/node_endpoint.py``.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from nomadd.agent.http.internal_endpoint import call_rpc, legacy_write_result
from nomadd.agent.http.server import read_body
from nomadd.structs.errors import ValidationError

if TYPE_CHECKING:
    from nomadd.agent.agent import Agent
    from nomadd.agent.http.server import Router


async def drain(agent: Agent, req: web.Request) -> object:
    body = await read_body(req)
    spec = body.get("DrainSpec")
    if spec is not None and not isinstance(spec, dict):
        raise ValidationError("DrainSpec: expected an object")
    deadline = (spec or {}).get("Deadline", 0)
    if spec is not None and (not isinstance(deadline, int) or isinstance(deadline, bool)):
        raise ValidationError("DrainSpec.Deadline: expected integer nanoseconds")
    args = {
        "NodeID": req.match_info["id"],
        "DrainStrategy": None
        if spec is None
        else {"Deadline": deadline, "IgnoreSystemJobs": bool(spec.get("IgnoreSystemJobs"))},
        "MarkEligible": bool(body.get("MarkEligible")),
        "Meta": body.get("Meta") or {},
    }
    return legacy_write_result(await call_rpc(agent, "Node.UpdateDrain", args))


def register(router: Router) -> None:
    router.add("POST", "/v1/node/{id}/drain", drain)
    router.add("PUT", "/v1/node/{id}/drain", drain)
