"""``nomadd alloc exec [-task T] [-i] [-t] <alloc> <command> [<args>...]`` (Nomad's
command/alloc_exec.go): run a command inside a running task over the websocket of
``/v1/client/allocation/:id/exec``, asked of the agent of the node that runs the allocation.

``-i`` (default true) sends this terminal's input; ``-t`` (default: when stdin is a terminal)
gives the command a pseudo terminal: the local terminal is put in raw mode for the session and
window size changes are sent along. The exit code is the command's.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import ssl
import sys
import termios
import tty as ttymod
from typing import Any

import aiohttp

from nomadd.api.client import Client
from nomadd.cli import meta
from nomadd.cli.alloc_common import find_alloc, group_tasks

__all__ = ["run"]

USAGE = "nomadd alloc exec [options] <allocation> <command> [<args>...]"
READ_BYTES = 4096


def _node_url(client: Client, alloc: dict[str, Any]) -> str:
    """The base URL of the agent that runs the allocation (the given agent when unknown)."""
    try:
        node, _ = client.get(f"/v1/node/{alloc.get('NodeID', '')}")
    except meta.APIError:
        return client.address
    addr = str((node or {}).get("HTTPAddr") or "") if isinstance(node, dict) else ""
    if not addr:
        return client.address
    scheme = "https" if client.address.startswith("https://") else "http"
    return f"{scheme}://{addr}"


def _size_frame() -> dict[str, Any] | None:
    try:
        cols, rows = os.get_terminal_size(sys.stdout.fileno())
    except OSError:
        return None
    return {"tty_size": {"height": rows, "width": cols}}


async def _send(ws: aiohttp.ClientWebSocketResponse, out: asyncio.Queue[dict[str, Any]]) -> None:
    """Frames to the agent, in the order they were made."""
    while True:
        await ws.send_json(await out.get())


async def _session(
    url: str, headers: dict[str, str], ctx: ssl.SSLContext | bool, tty: bool, stdin: bool
) -> int:
    loop = asyncio.get_running_loop()
    out: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    fd = sys.stdin.fileno()

    def on_resize() -> None:
        frame = _size_frame()
        if frame is not None:
            out.put_nowait(frame)

    def on_input() -> None:
        try:
            data = os.read(fd, READ_BYTES)
        except OSError:
            data = b""
        if data:
            out.put_nowait({"stdin": {"data": base64.b64encode(data).decode()}})
        else:
            loop.remove_reader(fd)
            out.put_nowait({"stdin": {"close": True}})

    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(url, headers=headers, ssl=ctx, heartbeat=30.0, max_msg_size=0) as ws,
    ):
        sender = asyncio.create_task(_send(ws, out))
        if tty:
            on_resize()
            loop.add_signal_handler(signal.SIGWINCH, on_resize)
        if stdin:
            loop.add_reader(fd, on_input)
        else:
            out.put_nowait({"stdin": {"close": True}})
        try:
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                for name, stream in (("stdout", sys.stdout.buffer), ("stderr", sys.stderr.buffer)):
                    data = (frame.get(name) or {}).get("data")
                    if data:
                        stream.write(base64.b64decode(data))
                        stream.flush()
                if frame.get("exited"):
                    return int((frame.get("result") or {}).get("exit_code") or 0)
        finally:
            sender.cancel()
            if stdin:
                loop.remove_reader(fd)
            if tty:
                loop.remove_signal_handler(signal.SIGWINCH)
    return meta.fail("unexpected EOF from the exec session")


def _refusal(client: Client, url: str, err: aiohttp.WSServerHandshakeError) -> str:
    """Why the agent refused the websocket: the same request without the upgrade gets the
    error text (the handler checks its input before upgrading)."""
    base, _, path = url.partition("/v1/")
    try:
        Client(address=base, token=client.token, tls=client.tls).raw("GET", "/v1/" + path, None, None)
    except meta.APIError as api_err:
        return str(api_err)
    return f"{err.status} {err.message}"


def run(args: list[str]) -> int:
    fs = meta.new_flagset("alloc exec")
    fs.string("task", "The task to run the command in (needed when the group has several).")
    fs.bool("i", "Pass this terminal's stdin to the command (default true).")
    fs.bool("t", "Allocate a pseudo terminal (default: when stdin is a terminal).")
    parsed = meta.parse(fs, args, USAGE)
    if parsed is None:
        return 1
    opts, rest = parsed
    if len(rest) < 2:
        return meta.fail(f"This command takes at least two arguments: <allocation> <command>\nUsage: {USAGE}")
    client = meta.api_client(opts)
    alloc = find_alloc(client, rest[0])
    if alloc is None:
        return 1
    tasks = group_tasks(alloc)
    task = str(opts.get("task") or "")
    if not task:
        if len(tasks) != 1:
            return meta.fail(f"Please specify the task (-task); allocation has: {', '.join(tasks)}")
        task = tasks[0]
    elif task not in tasks:
        return meta.fail(f'Could not find task named: "{task}"')
    stdin = bool(opts.get("i", True))
    tty = bool(opts.get("t", sys.stdin.isatty()))
    base = _node_url(client, alloc)
    params = {"task": task, "command": json.dumps(rest[1:]), "tty": "true" if tty else "false"}
    url = base + client.url(f"/v1/client/allocation/{alloc['ID']}/exec", params)[len(client.address) :]
    headers = {"X-Nomad-Token": client.token} if client.token else {}
    ctx: ssl.SSLContext | bool = client.tls.context() if base.startswith("https://") else True
    saved = None
    if tty and sys.stdin.isatty():
        saved = termios.tcgetattr(sys.stdin.fileno())
        ttymod.setraw(sys.stdin.fileno())
    try:
        return asyncio.run(_session(url, headers, ctx, tty, stdin))
    except aiohttp.WSServerHandshakeError as err:
        return meta.fail(f"Failed to exec into task: {_refusal(client, url, err)}")
    except aiohttp.ClientError as err:
        return meta.fail(f"Failed to exec into task: {err}")
    except KeyboardInterrupt:
        return 130
    finally:
        if saved is not None:
            with contextlib.suppress(termios.error):
                termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, saved)
