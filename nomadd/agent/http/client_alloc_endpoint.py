"""Client-agent allocation endpoints (Nomad's ``command/agent/alloc_endpoint.go``, client side):

* ``GET /v1/client/allocation/:id/stats`` — ``AllocResourceUsage`` of the running tasks;
* ``PUT|POST /v1/client/allocation/:id/restart`` (``{"TaskName": ""}``: every running task);
* ``GET|PUT /v1/client/allocation/:id/gc`` and ``GET|PUT /v1/client/gc`` — destroy terminal
  allocations now;
* ``GET /v1/client/allocation/:id/exec?task=&command=["/bin/sh"]&tty=true`` — a websocket
  carrying Nomad's frames: in ``{"stdin":{"data":b64}}``, ``{"stdin":{"close":true}}``,
  ``{"tty_size":{"height":h,"width":w}}``; out ``{"stdout":{"data":b64}}``,
  ``{"stderr":{"data":b64}}`` and last ``{"exited":true,"result":{"exit_code":n}}``. A
  ``raw_exec`` task also needs ``alloc-node-exec`` (it is a shell on the host, Nomad's rule).

An allocation on another node is forwarded to it (exec: the websocket is relayed; the CLI asks
that node's agent directly when it can).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import WSMsgType, web

from nomadd.agent.http.acl_rules import token_of
from nomadd.agent.http.client_endpoint import (
    forward_headers,
    local_runner,
    node_addr_of,
    pick_task,
    runner_or_forward,
)
from nomadd.agent.http.proxy import FORWARD_TIMEOUT_S, PROXIED_HEADER
from nomadd.agent.http.server import read_body
from nomadd.client.alloc_stats import alloc_usage
from nomadd.client.exec_session import ExecSession, exec_spec
from nomadd.drivers.base import ExecStream
from nomadd.structs.errors import (
    DriverError,
    NotImplementedForModeError,
    PermissionDeniedError,
    RPCError,
    UnknownAllocError,
    ValidationError,
)

if TYPE_CHECKING:
    from nomadd.agent.agent import Agent
    from nomadd.agent.http.server import Router

logger = logging.getLogger(__name__)

MAX_COMMAND_ARGS = 1024
FIRST_FRAME_WAIT_S = 1.0  # how long a tty session waits for the caller's terminal size


async def alloc_stats(agent: Agent, req: web.Request) -> object:
    runner = await runner_or_forward(agent, req, "id")
    if isinstance(runner, web.StreamResponse):
        return runner
    return await asyncio.to_thread(alloc_usage, runner.task_pids())


async def alloc_restart(agent: Agent, req: web.Request) -> object:
    runner = await runner_or_forward(agent, req, "id")
    if isinstance(runner, web.StreamResponse):
        return runner
    body = await read_body(req, optional=True)
    task = body.get("TaskName") or ""
    if not isinstance(task, str):
        raise ValidationError("TaskName must be a string")
    try:
        await runner.restart(task)
    except DriverError as err:
        raise ValidationError(str(err)) from err
    return {}


async def alloc_gc(agent: Agent, req: web.Request) -> object:
    runner = await runner_or_forward(agent, req, "id")
    if isinstance(runner, web.StreamResponse):
        return runner
    allocs = agent.client.allocs if agent.client is not None else None
    if allocs is None or not await allocs.collect(runner.id):
        raise ValidationError(f"allocation {runner.id} is still running")
    return None


async def client_gc(agent: Agent, req: web.Request) -> object:
    allocs = agent.client.allocs if agent.client is not None else None
    if allocs is None:
        raise NotImplementedForModeError("Client not enabled")
    await allocs.collect_all()
    return None


def _command(raw: str) -> list[str]:
    try:
        command = json.loads(raw)
    except json.JSONDecodeError:
        raise ValidationError("command must be a JSON array of strings") from None
    if not isinstance(command, list) or not command or not all(isinstance(c, str) for c in command):
        raise ValidationError("command must be a non-empty JSON array of strings")
    if len(command) > MAX_COMMAND_ARGS or any("\0" in c for c in command):
        raise ValidationError("command has too many arguments or a NUL byte")
    return command


async def _may_node_exec(agent: Agent, req: web.Request, namespace: str) -> None:
    if agent.acl.enabled:
        acl = await agent.acl.resolve(token_of(req))
        if not acl.allow_ns_op(namespace, "alloc-node-exec"):
            raise PermissionDeniedError("Permission denied: raw_exec tasks need alloc-node-exec")


async def _forward_exec(agent: Agent, req: web.Request, alloc_id: str) -> web.WebSocketResponse:
    """Relay the websocket to the agent of the node that runs the allocation."""
    if req.headers.get(PROXIED_HEADER) == "1":
        raise UnknownAllocError(f'Unknown allocation "{alloc_id}" on this node')
    addr = await node_addr_of(agent, alloc_id)
    tls = agent.tls
    url = f"{'https' if tls is not None else 'http'}://{addr}{req.path_qs}"
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=FORWARD_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        try:
            up = await session.ws_connect(
                url, headers=forward_headers(req), ssl=tls.peer if tls is not None else True, max_msg_size=0
            )
        except aiohttp.WSServerHandshakeError as err:
            raise RPCError(
                f"exec on node {addr} refused: {err.status} {err.message}", code=err.status
            ) from err
        except aiohttp.ClientError as err:
            raise RPCError(f"forwarding to node {addr} failed: {err}") from err
        ws = web.WebSocketResponse(heartbeat=30.0)
        await ws.prepare(req)

        async def pump(src: Any, dst: Any) -> None:
            async for msg in src:
                if msg.type != WSMsgType.TEXT:
                    break
                await dst.send_str(msg.data)

        relays = [asyncio.ensure_future(pump(ws, up)), asyncio.ensure_future(pump(up, ws))]
        try:
            await asyncio.wait(relays, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for r in relays:
                r.cancel()
            await asyncio.gather(*relays, return_exceptions=True)
            await up.close()
            await ws.close()
        return ws


async def alloc_exec(agent: Agent, req: web.Request) -> object:
    alloc_id = req.match_info["id"]
    runner = local_runner(agent, alloc_id)
    if runner is None:
        return await _forward_exec(agent, req, alloc_id)
    q = req.query
    task = pick_task(runner, q.get("task", ""))
    command = _command(q.get("command", ""))
    tty = q.get("tty", "").lower() in ("1", "true")
    tr = runner.runners.get(task)
    if tr is None or tr.handle is None or not tr.live:
        raise ValidationError(f"task {task!r} is not running")
    if tr.task.driver == "raw_exec":
        await _may_node_exec(agent, req, runner.alloc.namespace)
    spec: dict[str, Any] = {}
    try:  # a driver with its own exec (docker) needs no spec
        if tr.driver.exec_session(tr.handle, command, tty=tty, size=(0, 0)) is None:
            spec = exec_spec(
                tr.task.driver, tr.config.user, tr.handle.driver_state, tr.config.env, tr.config.task_dir
            )
    except DriverError as err:
        raise ValidationError(str(err)) from err
    ws = web.WebSocketResponse(heartbeat=30.0)
    await ws.prepare(req)
    size, pending = await _first_frame(ws) if tty else ((0, 0), None)
    session: ExecStream = tr.driver.exec_session(tr.handle, command, tty=tty, size=size) or ExecSession(
        command, spec, tty=tty, size=size
    )
    try:
        await session.start()
    except DriverError as err:
        await ws.send_json({"stderr": {"data": base64.b64encode(f"{err}\n".encode()).decode()}})
        await ws.send_json({"exited": True, "result": {"exit_code": 126}})
        await ws.close()
        return ws
    logger.info("alloc exec alloc_id=%s task=%s tty=%s", runner.id, task, tty)
    reader = asyncio.ensure_future(_read_input(ws, session, pending))

    async def output(name: str, data: bytes) -> None:
        await ws.send_json({name: {"data": base64.b64encode(data).decode()}})

    try:
        code = await session.run(output)
        await ws.send_json({"exited": True, "result": {"exit_code": code}})
    except ConnectionResetError:
        logger.debug("alloc exec caller went away alloc_id=%s task=%s", runner.id, task)
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await session.kill()
        await ws.close()
    return ws


def _tty_size(frame: Any) -> tuple[int, int] | None:
    size = frame.get("tty_size") if isinstance(frame, dict) else None
    if not isinstance(size, dict):
        return None
    return int(size.get("height") or 0), int(size.get("width") or 0)


async def _first_frame(ws: web.WebSocketResponse) -> tuple[tuple[int, int], str | None]:
    """The terminal size a caller sends first (Nomad's CLI does), so the command starts with it;
    any other first frame is kept for the session."""
    try:
        msg = await ws.receive(timeout=FIRST_FRAME_WAIT_S)
    except TimeoutError:
        return (0, 0), None
    if msg.type != WSMsgType.TEXT:
        return (0, 0), None
    try:
        size = _tty_size(json.loads(msg.data))
    except (ValueError, TypeError):
        size = None
    return (size, None) if size is not None else ((0, 0), str(msg.data))


async def _apply(text: str, session: ExecStream) -> None:
    """One input frame; a malformed one is logged and skipped."""
    try:
        frame: Any = json.loads(text)
        stdin = frame.get("stdin") if isinstance(frame, dict) else None
        if isinstance(stdin, dict) and stdin.get("data"):
            await session.write(base64.b64decode(str(stdin["data"]), validate=True))
        if isinstance(stdin, dict) and stdin.get("close"):
            await session.close_stdin()
        size = _tty_size(frame)
        if size is not None:
            session.resize(*size)
    except (ValueError, TypeError, binascii.Error, OSError) as err:
        logger.debug("exec input frame skipped err=%s", err)


async def _read_input(ws: web.WebSocketResponse, session: ExecStream, pending: str | None) -> None:
    """Frames from the caller until it closes."""
    if pending is not None:
        await _apply(pending, session)
    async for msg in ws:
        if msg.type == WSMsgType.TEXT:
            await _apply(msg.data, session)
    await session.kill()  # the caller went away: the command goes too


def register(router: Router) -> None:
    router.add("GET", "/v1/client/allocation/{id}/stats", alloc_stats)
    router.add("PUT", "/v1/client/allocation/{id}/restart", alloc_restart)
    router.add("POST", "/v1/client/allocation/{id}/restart", alloc_restart)
    router.add("GET", "/v1/client/allocation/{id}/gc", alloc_gc)
    router.add("PUT", "/v1/client/allocation/{id}/gc", alloc_gc)
    router.add("GET", "/v1/client/gc", client_gc)
    router.add("PUT", "/v1/client/gc", client_gc)
    router.add("GET", "/v1/client/allocation/{id}/exec", alloc_exec)
