"""``/v1/volumes`` and ``/v1/volume/host/:id``, as Nomad answers them without CSI plugins or
dynamic host volumes.

Nomad lists only *dynamic* host volumes (created through the API) under
``/v1/volumes?type=host``; the static ones a client configures (``host_volume`` blocks, all that
nomadd has) appear in the node's ``HostVolumes`` (``/v1/node/:id``), never there. So the list is
empty, a volume ID is not found, and creating or registering a dynamic host volume is refused.
Without ``type`` the list is an empty CSI list; an unknown type is a 404 (Nomad's answers).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nomadd.structs.errors import NotFoundError, ValidationError

if TYPE_CHECKING:
    from aiohttp import web

    from nomadd.agent.agent import Agent
    from nomadd.agent.http.server import Router

VOLUME_TYPES = ("host", "csi")


async def list_volumes(agent: Agent, req: web.Request) -> object:
    kind = req.query.get("type")
    if kind is not None and kind not in VOLUME_TYPES:
        raise NotFoundError("resource not found")
    return []


async def get_host_volume(agent: Agent, req: web.Request) -> object:
    raise NotFoundError("volume not found")


async def create_host_volume(agent: Agent, req: web.Request) -> object:
    raise ValidationError(
        "dynamic host volumes are not supported by nomadd: configure a host_volume on the client"
    )


def register(router: Router) -> None:
    router.add("GET", "/v1/volumes", list_volumes)
    router.add("GET", "/v1/volume/host/{id}", get_host_volume)
    for method in ("PUT", "POST"):
        router.add(method, "/v1/volume/host/create", create_host_volume)
        router.add(method, "/v1/volume/host/register", create_host_volume)
