"""``/v1/operator/autopilot/configuration`` (GET, PUT ``?cas=``), ``/v1/operator/autopilot/health``
and ``PUT /v1/operator/raft/transfer-leadership?address=|id=``, in Nomad's JSON shapes.

Durations are Go duration strings both ways (``"200ms"``; an integer in a PUT is nanoseconds,
as Go's ``time.Duration`` marshals). The health endpoint answers 429 when the cluster is not
healthy, with the same body (Nomad's ``OperatorServerHealth``).
"""

from __future__ import annotations

import datetime
import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from nomadd.agent.http.internal_endpoint import call, envelope, query_result
from nomadd.agent.http.server import read_body
from nomadd.helper.duration import format_duration, parse_duration
from nomadd.structs.errors import ValidationError
from nomadd.structs.requests.autopilot import (
    AUTOPILOT_GET_CONFIG,
    AUTOPILOT_SERVER_HEALTH,
    AUTOPILOT_SET_CONFIG,
    OPERATOR_TRANSFER_LEADERSHIP,
    AutopilotConfig,
    AutopilotGetConfigRequest,
    AutopilotSetConfigRequest,
    OperatorHealthReply,
    ServerHealthRequest,
    TransferLeadershipRequest,
)

if TYPE_CHECKING:
    from nomadd.agent.agent import Agent
    from nomadd.agent.http.server import Router

__all__ = ["config_from_api", "config_to_api", "health_to_api", "register"]


def config_to_api(c: AutopilotConfig) -> dict[str, Any]:
    return {
        "CleanupDeadServers": c.cleanup_dead_servers,
        "LastContactThreshold": format_duration(c.last_contact_threshold_s),
        "MaxTrailingLogs": c.max_trailing_logs,
        "MinQuorum": c.min_quorum,
        "ServerStabilizationTime": format_duration(c.server_stabilization_time_s),
        "EnableRedundancyZones": False,
        "DisableUpgradeMigration": False,
        "EnableCustomUpgrades": False,
        "CreateIndex": c.create_index,
        "ModifyIndex": c.modify_index,
    }


def _duration(body: dict[str, Any], key: str, default: float) -> float:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValidationError(f'{key}: expected a duration string like "200ms"')
    if isinstance(value, int):
        return value / 1e9
    try:
        return parse_duration(value)
    except ValueError as err:
        raise ValidationError(f"{key}: {err}") from None


def _int(body: dict[str, Any], key: str, default: int) -> int:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{key}: expected an integer")
    return value


def config_from_api(body: dict[str, Any]) -> AutopilotConfig:
    """A PUT body; absent keys take Nomad's defaults (its API decodes into a zero struct too)."""
    d = AutopilotConfig()
    cleanup = body.get("CleanupDeadServers", d.cleanup_dead_servers)
    if not isinstance(cleanup, bool):
        raise ValidationError("CleanupDeadServers: expected true or false")
    return AutopilotConfig(
        cleanup_dead_servers=cleanup,
        last_contact_threshold_s=_duration(body, "LastContactThreshold", d.last_contact_threshold_s),
        max_trailing_logs=_int(body, "MaxTrailingLogs", d.max_trailing_logs),
        server_stabilization_time_s=_duration(body, "ServerStabilizationTime", d.server_stabilization_time_s),
        min_quorum=_int(body, "MinQuorum", d.min_quorum),
    )


def _rfc3339(ns: int) -> str:
    t = datetime.datetime.fromtimestamp(ns / 1e9, tz=datetime.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond:06d}Z"


def health_to_api(h: OperatorHealthReply) -> dict[str, Any]:
    return {
        "Healthy": h.healthy,
        "FailureTolerance": h.failure_tolerance,
        "Leader": h.leader,
        "Voters": list(h.voters),
        "Servers": [
            {
                "ID": s.id,
                "Name": s.name,
                "Address": s.address,
                "SerfStatus": s.serf_status,
                "Version": s.version,
                "Leader": s.leader,
                "LastContact": format_duration(s.last_contact_ms / 1000)
                if s.last_contact_ms >= 0
                else "-1ns",
                "LastTerm": s.last_term,
                "LastIndex": s.last_index,
                "Healthy": s.healthy,
                "Voter": s.voter,
                "StableSince": _rfc3339(s.stable_since_ns),
            }
            for s in h.servers
        ],
    }


async def get_config(agent: Agent, req: web.Request) -> object:
    reply = await call(agent, AUTOPILOT_GET_CONFIG, AutopilotGetConfigRequest(**envelope(req)))
    return query_result(reply.meta, config_to_api(reply.config))


async def set_config(agent: Agent, req: web.Request) -> object:
    config = config_from_api(await read_body(req))
    cas_arg = req.query.get("cas")
    cas_index = 0
    if cas_arg is not None:
        try:
            cas_index = int(cas_arg)
        except ValueError:
            raise ValidationError(f"Error parsing cas value: {cas_arg!r}") from None
    request = AutopilotSetConfigRequest(
        **envelope(req), config=config, cas=cas_arg is not None, cas_index=cas_index
    )
    reply = await call(agent, AUTOPILOT_SET_CONFIG, request)
    return reply.updated


async def health(agent: Agent, req: web.Request) -> web.StreamResponse:
    reply = await call(agent, AUTOPILOT_SERVER_HEALTH, ServerHealthRequest(**envelope(req)))
    return web.Response(
        status=200 if reply.healthy else 429,
        text=json.dumps(health_to_api(reply)),
        content_type="application/json",
        headers={"X-Nomad-Index": str(reply.meta.index)},
    )


async def transfer_leadership(agent: Agent, req: web.Request) -> object:
    address = req.query.get("address", "")
    peer_id = req.query.get("id", "")
    if address and peer_id:
        raise ValidationError("must specify either ?id or ?address, not both")
    request = TransferLeadershipRequest(**envelope(req), address=address, id=peer_id)
    reply = await call(agent, OPERATOR_TRANSFER_LEADERSHIP, request)
    return {"Address": reply.leader, "Index": reply.meta.index}


def register(router: Router) -> None:
    router.add("GET", "/v1/operator/autopilot/configuration", get_config)
    router.add("PUT", "/v1/operator/autopilot/configuration", set_config)
    router.add("GET", "/v1/operator/autopilot/health", health)
    router.add("PUT", "/v1/operator/raft/transfer-leadership", transfer_leadership)
    router.add("POST", "/v1/operator/raft/transfer-leadership", transfer_leadership)
