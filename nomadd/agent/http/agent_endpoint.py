"""``/v1/agent/self`` and ``/v1/agent/reload`` (Nomad's agent_endpoint.go, the agent-local parts)."""

from __future__ import annotations

import os
import platform
import sys
import threading
import time
from typing import TYPE_CHECKING

from aiohttp import web

from nomadd import VERSION

if TYPE_CHECKING:
    from nomadd.agent.agent import Agent
    from nomadd.agent.http.server import Router


def _pascal(key: str) -> str:
    special = {
        "id": "ID",
        "http": "HTTP",
        "dns": "DNS",
        "acl": "ACL",
        "gc": "GC",
        "ttl": "TTL",
        "dc": "DC",
        "cpu": "CPU",
        "mb": "MB",
        "dir": "Dir",
        "raft": "Raft",
    }
    return "".join(special.get(p, p.capitalize()) for p in key.split("_"))


def _to_api(value: object) -> object:
    if isinstance(value, dict):
        return {
            _pascal(str(k)) if str(k).islower() or "_" in str(k) else str(k): _to_api(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_to_api(v) for v in value]
    if isinstance(value, bytes):
        return "<redacted>"
    return value


async def agent_self(agent: Agent, req: web.Request) -> object:
    member: object = {}
    if agent.server is not None:
        member = agent.server.member_info()
    stats: dict[str, object] = {
        "nomad": {"server": str(agent.server is not None).lower()},
        "runtime": _runtime_stats(agent),
    }
    if agent.server is not None:
        stats.update(agent.server.stats())
    if agent.client is not None:
        stats["client"] = agent.client.stats()
    return {"config": _to_api(agent.config.redacted()), "member": member, "stats": stats}


def _runtime_stats(agent: Agent) -> dict[str, str]:
    return {
        "arch": platform.machine(),
        "version": f"python{platform.python_version()}",
        "max_procs": str(os.cpu_count() or 1),
        "goroutines": str(threading.active_count()),
        "cpu_count": str(os.cpu_count() or 1),
        "kernel.name": sys.platform,
        "nomadd_version": VERSION,
        "uptime": f"{time.monotonic() - agent.started_at:.0f}s",
    }


async def agent_reload(agent: Agent, req: web.Request) -> object:
    """Same as SIGHUP: re-read the config files and flags, apply what can change live."""
    await agent.request_reload()
    return None


def register(router: Router) -> None:
    router.add("GET", "/v1/agent/self", agent_self)
    router.add("PUT", "/v1/agent/reload", agent_reload)
    router.add("POST", "/v1/agent/reload", agent_reload)
