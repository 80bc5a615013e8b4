"""Nomad Enterprise's endpoints, answered as Nomad's open-source edition answers them.

Sentinel policies, resource quotas and recommendations exist only in Nomad Enterprise; the
open-source agent serves their paths with ``501 Nomad Enterprise only endpoint`` for any method
and any token (Nomad's ``registerEnterpriseHandlers``/``entOnly``), so a client written for
Enterprise learns what it is talking to instead of getting a 404. ``/v1/operator/license`` reads
as ``204 No Content`` and refuses a license upload with the same 501.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from nomadd.agent.http.acl_rules import ENTERPRISE_ONLY
from nomadd.structs.errors import RPCError

if TYPE_CHECKING:
    from nomadd.agent.agent import Agent
    from nomadd.agent.http.server import Router

__all__ = ["ERR_ENTERPRISE_ONLY", "EnterpriseOnlyError", "register"]

ERR_ENTERPRISE_ONLY = "Nomad Enterprise only endpoint"


class EnterpriseOnlyError(RPCError):
    """A Nomad Enterprise feature (501)."""

    code = 501

    def __init__(self, message: str = ERR_ENTERPRISE_ONLY, *, code: int | None = None) -> None:
        super().__init__(message, code=code)


async def enterprise_only(agent: Agent, req: web.Request) -> object:
    raise EnterpriseOnlyError()


async def license_get(agent: Agent, req: web.Request) -> object:
    return web.Response(status=204)


def register(router: Router) -> None:
    for method, path in ENTERPRISE_ONLY:
        router.add(method, path, enterprise_only)
    router.add("GET", "/v1/operator/license", license_get)
