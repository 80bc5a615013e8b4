"""Client-agent endpoints: ``GET|PUT /v1/agent/servers``, ``GET /v1/client/stats``,
``GET /v1/client/fs/logs/:alloc`` (``?task= &type=stdout|stderr &follow= &origin= &offset=
&plain=``) and ``POST|PUT /v1/client/allocation/:id/signal``.

The alloc endpoints answer for allocations this client runs; for an allocation on another node
the agent asks the servers where it is and forwards the request to that node's HTTP address
(Nomad forwards through its server RPC; nomadd goes to the node directly).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from typing import TYPE_CHECKING, Any

from aiohttp import web

from nomadd.agent.http.acl_rules import token_of
from nomadd.agent.http.internal_endpoint import call
from nomadd.agent.http.proxy import PROXIED_HEADER, proxy
from nomadd.agent.http.server import parse_uint64, read_body
from nomadd.client.logs import stream_logs
from nomadd.client.stats import host_stats
from nomadd.structs.errors import DriverError as NomaddDriverError
from nomadd.structs.errors import (
    NotImplementedForModeError,
    RPCError,
    UnknownAllocError,
    ValidationError,
)
from nomadd.structs.requests.alloc import ALLOC_GET, AllocSpecificRequest
from nomadd.structs.requests.node import NODE_GET, NodeSpecificRequest

if TYPE_CHECKING:
    from nomadd.agent.agent import Agent
    from nomadd.agent.http.server import Router
    from nomadd.client.alloc_runner import AllocRunner
    from nomadd.client.client import Client

logger = logging.getLogger(__name__)


def _client(agent: Agent) -> Client:
    if agent.client is None:
        raise NotImplementedForModeError("Client not enabled")
    return agent.client


async def get_servers(agent: Agent, req: web.Request) -> object:
    return sorted(_client(agent).server_list.servers())


async def put_servers(agent: Agent, req: web.Request) -> object:
    client = _client(agent)
    addrs = req.query.getall("address", [])
    if not addrs:
        raise ValidationError("missing server address")
    client.server_list.set_servers(addrs)
    return None


async def client_stats(agent: Agent, req: web.Request) -> object:
    client = _client(agent)
    stats: dict[str, Any] = await asyncio.to_thread(host_stats, client.alloc_dir)
    return stats


def forward_headers(req: web.Request) -> dict[str, str]:
    """Headers of a request proxied to the node's agent: the mark, and the caller's token (the
    node's agent checks it too)."""
    headers = {PROXIED_HEADER: "1"}
    token = token_of(req)
    if token:
        headers["X-Nomad-Token"] = token
    return headers


def local_runner(agent: Agent, alloc_id: str) -> AllocRunner | None:
    allocs = getattr(agent.client, "allocs", None) if agent.client is not None else None
    if allocs is None:
        return None
    runner: AllocRunner | None = allocs.get(alloc_id)
    if runner is None:  # a unique prefix of a local allocation
        found = [r for a, r in allocs.runners.items() if a.startswith(alloc_id)]
        runner = found[0] if len(found) == 1 else None
    return runner


async def node_addr_of(agent: Agent, alloc_id: str) -> str:
    """The HTTP address of the node that runs ``alloc_id`` (asked of the servers)."""
    reply = await call(agent, ALLOC_GET, AllocSpecificRequest(alloc_id=alloc_id, allow_stale=True))
    alloc = reply.alloc
    if alloc is None:
        raise UnknownAllocError(f'Unknown allocation "{alloc_id}"')
    got = await call(agent, NODE_GET, NodeSpecificRequest(node_id=alloc.node_id, allow_stale=True))
    if got.node is None or not got.node.http_addr:
        raise RPCError(f"node of allocation {alloc_id} has no HTTP address")
    return got.node.http_addr


async def forward(agent: Agent, req: web.Request, alloc_id: str) -> web.StreamResponse:
    """Proxy the request to the agent of the node that runs the allocation (streaming)."""
    if req.headers.get(PROXIED_HEADER) == "1":
        raise UnknownAllocError(f'Unknown allocation "{alloc_id}" on this node')
    return await proxy(agent, req, await node_addr_of(agent, alloc_id), "node", forward_headers(req))


async def runner_or_forward(agent: Agent, req: web.Request, param: str) -> AllocRunner | web.StreamResponse:
    """The local runner of the allocation the route's ``param`` names, or the answer of the
    node that runs it."""
    alloc_id = req.match_info[param]
    runner = local_runner(agent, alloc_id)
    if runner is None:
        return await forward(agent, req, alloc_id)
    return runner


def pick_task(runner: AllocRunner, task: str) -> str:
    names = [t.name for t in _group_tasks(runner)]
    if not task:
        if len(names) != 1:
            raise ValidationError("must include task name")
        return str(names[0])
    if task not in names:
        raise ValidationError(f"unknown task name {task!r}")
    return task


def _group_tasks(runner: AllocRunner) -> list[Any]:
    job = runner.alloc.job
    for tg in job.task_groups if job else ():
        if tg.name == runner.alloc.task_group:
            return list(tg.tasks)
    return []


async def fs_logs(agent: Agent, req: web.Request) -> object:
    alloc_id = req.match_info["alloc"]
    runner = local_runner(agent, alloc_id)
    if runner is None:
        return await forward(agent, req, alloc_id)
    q = req.query
    task = pick_task(runner, q.get("task", ""))
    kind = q.get("type", "stdout")
    if kind not in ("stdout", "stderr"):
        raise ValidationError("must include a valid log type: stdout or stderr")
    origin = q.get("origin", "start")
    if origin not in ("start", "end"):
        raise ValidationError('origin must be "start" or "end"')
    offset = parse_uint64("offset", q.get("offset", "0") or "0")
    follow = q.get("follow", "").lower() in ("1", "true")
    plain = q.get("plain", "").lower() in ("1", "true")
    directory, base = runner.log_path(task, kind)
    resp = web.StreamResponse(status=200)
    resp.content_type = "text/plain" if plain else "application/json"
    await resp.prepare(req)
    position = offset
    file_name = f"alloc/logs/{base}"
    try:
        async for chunk in stream_logs(
            directory,
            base,
            origin=origin,
            offset=offset,
            follow=follow,
            finished=lambda: runner.task_dead(task),
            root=runner.alloc_dir.path,
        ):
            if plain:
                await resp.write(chunk)
            else:
                position += len(chunk)
                frame = {"Offset": position, "Data": base64.b64encode(chunk).decode(), "File": file_name}
                await resp.write(json.dumps(frame).encode())
    except (ConnectionResetError, asyncio.CancelledError):
        logger.debug("log stream closed by the reader alloc_id=%s task=%s", runner.id, task)
        raise
    await resp.write_eof()
    return resp


async def signal_alloc(agent: Agent, req: web.Request) -> object:
    alloc_id = req.match_info["id"]
    runner = local_runner(agent, alloc_id)
    if runner is None:
        return await forward(agent, req, alloc_id)
    body = await read_body(req, optional=True)
    task = str(body.get("Task") or "")
    sig = str(body.get("Signal") or "SIGKILL")
    try:
        await runner.signal(task, sig)
    except NomaddDriverError as err:
        raise ValidationError(str(err)) from err
    return {}


def register(router: Router) -> None:
    router.add("GET", "/v1/agent/servers", get_servers)
    router.add("PUT", "/v1/agent/servers", put_servers)
    router.add("POST", "/v1/agent/servers", put_servers)
    router.add("GET", "/v1/client/stats", client_stats)
    router.add("GET", "/v1/client/fs/logs/{alloc}", fs_logs)
    router.add("POST", "/v1/client/allocation/{id}/signal", signal_alloc)
    router.add("PUT", "/v1/client/allocation/{id}/signal", signal_alloc)
