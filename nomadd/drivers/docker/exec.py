"""``alloc exec`` into a docker task: a Docker exec in the task's container.

:class:`DockerExecSession` has the interface of the client's exec sessions (``start``, ``write``,
``close_stdin``, ``resize``, ``run``, ``kill``), so the HTTP endpoint streams it the same way.
The command runs with the task's user and environment (the container's own).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

import aiodocker
import aiohttp

from nomadd.drivers.base import ExecOutput
from nomadd.structs.errors import DriverError

logger = logging.getLogger(__name__)

__all__ = ["DockerExecSession"]

STREAM_NAMES = {1: "stdout", 2: "stderr"}


class DockerExecSession:
    """One command run by Docker exec inside a running container."""

    def __init__(
        self, docker: Any, container_id: str, command: Sequence[str], *, tty: bool, size: tuple[int, int]
    ) -> None:
        if not command:
            raise DriverError("command is empty")
        self._docker = docker
        self._container_id = container_id
        self.command = list(command)
        self.tty = tty
        self._size = size
        self._exec: Any = None
        self._stream: Any = None
        self._resizes: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        container = self._docker.containers.container(self._container_id)
        try:
            self._exec = await container.exec(self.command, stdin=True, tty=self.tty)
            self._stream = self._exec.start(detach=False)
            await self._stream._init()
        except aiodocker.DockerError as err:
            raise DriverError(f"failed to exec {self.command[0]!r}: {err.message}") from err
        except aiohttp.ClientError as err:
            raise DriverError(f"failed to exec {self.command[0]!r}: docker unreachable: {err}") from err
        if self.tty and self._size[0] > 0:
            await self._resize(*self._size)
        logger.info("docker exec session started container=%s tty=%s", self._container_id[:12], self.tty)

    async def _resize(self, height: int, width: int) -> None:
        with contextlib.suppress(aiodocker.DockerError):
            await self._exec.resize(h=height, w=width)

    def resize(self, height: int, width: int) -> None:
        if self._exec is not None and self.tty and height > 0 and width > 0:
            task = asyncio.get_running_loop().create_task(self._resize(height, width))
            self._resizes.add(task)  # held until done; kill() cancels what is left
            task.add_done_callback(self._resizes.discard)

    async def write(self, data: bytes) -> None:
        if self._stream is not None:
            await self._stream.write_in(data)

    async def close_stdin(self) -> None:
        if self._stream is None:
            return
        if self.tty:
            await self.write(b"\x04")  # end of file on a terminal: ^D
            return
        resp = self._stream._resp
        transport = resp.connection.transport if resp is not None and resp.connection else None
        if transport is not None and transport.can_write_eof():
            transport.write_eof()

    async def run(self, output: ExecOutput) -> int:
        """Stream the output until the command exits; its exit code."""
        assert self._stream is not None
        while True:
            msg = await self._stream.read_out()
            if msg is None:
                break
            await output(STREAM_NAMES.get(msg.stream, "stdout"), bytes(msg.data))
        for _ in range(50):  # the exec's status lags its stream's end by a moment
            info = await self._exec.inspect()
            if not info.get("Running"):
                code = info.get("ExitCode")
                return int(code) if code is not None else 0
            await asyncio.sleep(0.05)
        return 0

    async def kill(self) -> None:
        """The reader went away: close the stream (the command gets EOF/SIGHUP)."""
        for task in list(self._resizes):
            task.cancel()
        if self._stream is not None:
            with contextlib.suppress(Exception):
                await self._stream.close()
