"""A command run inside a task's context for ``alloc exec`` (Nomad's ``ExecTaskStreaming``).

The command gets what the task got: its environment, its working directory and, for the
``exec`` driver, its user (``nobody`` by default) and its cgroups; for ``raw_exec`` the task's
user when the agent runs as root, else the agent's. With ``tty`` it runs on a new pseudo
terminal as the session leader with that terminal as its controlling tty (so job control and
line editing work) and :meth:`ExecSession.resize` changes the window size; without, stdin,
stdout and stderr are pipes.

Output is read with the event loop's readers (no thread per session).
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import struct
import termios
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from nomadd.drivers import isolation
from nomadd.drivers.base import clean_env
from nomadd.drivers.executor import preexec_for
from nomadd.drivers.raw_exec import user_identity
from nomadd.structs.errors import DriverError

logger = logging.getLogger(__name__)

__all__ = ["ExecSession", "exec_spec"]

READ_BYTES = 32 * 1024
DEFAULT_EXEC_USER = "nobody"  # the exec driver's default task user

Output = Callable[[str, bytes], Awaitable[None]]  # (stream name "stdout"/"stderr", data)


def exec_spec(
    driver: str, user: str, driver_state: Mapping[str, Any], env: Mapping[str, str], cwd: str
) -> dict[str, Any]:
    """The executor-style spec (``nomadd.drivers.executor``) that puts a command where the task is."""
    spec: dict[str, Any] = {"env": clean_env(env), "cwd": cwd}
    if driver == "exec":
        uid, gid, groups = user_identity(user or DEFAULT_EXEC_USER)
        dirs = [str(d) for d in driver_state.get("cgroups") or []]
        spec.update(
            uid=uid, gid=gid, groups=groups, cgroup_procs=[os.path.join(d, "cgroup.procs") for d in dirs]
        )
        iso = driver_state.get("isolation")
        if isinstance(iso, Mapping):  # into the task's namespaces and root
            isolation.libc()  # loaded here, not in the forked child
            spec.update(isolation=dict(iso), ns_pid=int(driver_state.get("init_pid") or 0))
            spec["env"] = clean_env({**env, **isolation.TASK_ENV})
    elif driver == "raw_exec" and user and os.geteuid() == 0:
        uid, gid, groups = user_identity(user)
        spec.update(uid=uid, gid=gid, groups=groups)
    elif driver not in ("raw_exec", "exec"):
        raise DriverError(f"driver {driver!r} does not support exec")
    return spec


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def _set_winsize(fd: int, height: int, width: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


class ExecSession:
    """One running command; :meth:`run` streams its output to ``output`` and returns its exit code."""

    def __init__(
        self, command: Sequence[str], spec: Mapping[str, Any], *, tty: bool, size: tuple[int, int] = (0, 0)
    ) -> None:
        if not command:
            raise DriverError("command is empty")
        self.command = list(command)
        self.spec = dict(spec)
        self.tty = tty
        self._size = size  # (height, width) of the terminal from the start, when known
        self._master = -1
        self._stdin = -1
        self._proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        base = preexec_for(self.spec)
        tty = self.tty

        def preexec() -> None:
            base()  # setsid, cgroups, user
            if tty:
                fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        slave = -1
        kw: dict[str, Any] = {}
        if tty:
            self._master, slave = os.openpty()
            os.set_blocking(self._master, False)
            self.resize(*self._size)
            kw = {"stdin": slave, "stdout": slave, "stderr": slave}
        else:
            kw = {
                "stdin": asyncio.subprocess.PIPE,
                "stdout": asyncio.subprocess.PIPE,
                "stderr": asyncio.subprocess.PIPE,
            }
        env = dict(self.spec["env"])
        if tty:
            env.setdefault("TERM", "xterm-256color")  # what a terminal program expects to find
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *self.command,
                env=env,
                cwd=self.spec["cwd"],
                preexec_fn=preexec,
                **kw,
            )
        except OSError as err:
            self.close()
            raise DriverError(f"failed to exec {self.command[0]!r}: {err.strerror or err}") from err
        finally:
            if slave >= 0:
                os.close(slave)
        logger.info("exec session started pid=%d tty=%s", self._proc.pid, tty)

    def resize(self, height: int, width: int) -> None:
        if self._master >= 0 and height > 0 and width > 0:
            _set_winsize(self._master, height, width)

    async def write(self, data: bytes) -> None:
        if self._master >= 0:
            view = memoryview(data)
            while view:
                try:
                    n = os.write(self._master, view)
                except BlockingIOError:  # the terminal's input queue is full: let it drain
                    await asyncio.sleep(0.01)
                    continue
                view = view[n:]
        elif self._proc is not None and self._proc.stdin is not None:
            self._proc.stdin.write(data)
            await self._proc.stdin.drain()

    async def close_stdin(self) -> None:
        if self._master >= 0:
            await self.write(b"\x04")  # end of file on a terminal: ^D
        elif self._proc is not None and self._proc.stdin is not None:
            self._proc.stdin.close()

    async def _pump_pty(self, output: Output) -> None:
        loop = asyncio.get_running_loop()
        while True:
            ready: asyncio.Future[None] = loop.create_future()
            loop.add_reader(self._master, _wake, ready)
            try:
                await ready
            finally:
                loop.remove_reader(self._master)
            try:
                data = os.read(self._master, READ_BYTES)
            except BlockingIOError:
                continue
            except OSError:  # EIO: every process holding the terminal is gone
                return
            if not data:
                return
            await output("stdout", data)

    async def _pump_pipe(self, name: str, stream: asyncio.StreamReader | None, output: Output) -> None:
        while stream is not None:
            data = await stream.read(READ_BYTES)
            if not data:
                return
            await output(name, data)

    async def run(self, output: Output) -> int:
        """Stream the output until the command exits and its output is drained; its exit code."""
        proc = self._proc
        assert proc is not None
        if self._master >= 0:
            await self._pump_pty(output)
        else:
            await asyncio.gather(
                self._pump_pipe("stdout", proc.stdout, output), self._pump_pipe("stderr", proc.stderr, output)
            )
        code = await proc.wait()
        return code if code >= 0 else 128 - code

    async def kill(self) -> None:
        """Stop the command (the reader went away): SIGKILL its process group."""
        proc = self._proc
        if proc is not None and proc.returncode is None:
            try:
                os.killpg(proc.pid, 9)
            except ProcessLookupError:
                pass
            await proc.wait()
        self.close()

    def close(self) -> None:
        if self._master >= 0:
            os.close(self._master)
            self._master = -1
