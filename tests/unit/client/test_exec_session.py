"""``alloc exec`` sessions: pipes or a pseudo terminal, the task's env and cwd, resize, exit codes."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from nomadd.client.exec_session import ExecSession, exec_spec
from nomadd.structs.errors import DriverError


def _run(
    command: list[str], cwd: Path, *, tty: bool, stdin: bytes = b"", rows: int = 0
) -> tuple[dict[str, bytes], int]:
    async def main() -> tuple[dict[str, bytes], int]:
        spec = exec_spec("raw_exec", "", {}, {"GREETING": "hi", "PATH": os.environ["PATH"]}, str(cwd))
        session = ExecSession(command, spec, tty=tty)
        await session.start()
        if stdin:
            await session.write(stdin)
        await session.close_stdin()
        got: dict[str, bytes] = {"stdout": b"", "stderr": b""}

        async def output(name: str, data: bytes) -> None:
            got[name] += data

        code = await asyncio.wait_for(session.run(output), 10)
        await session.kill()
        return got, code

    return asyncio.run(main())


def test_pipes_carry_env_cwd_stdin_and_the_exit_code(tmp_path: Path) -> None:
    script = 'echo "$GREETING $(pwd)"; read line; echo "got $line"; echo err >&2; exit 7'
    got, code = _run(["/bin/sh", "-c", script], tmp_path, tty=False, stdin=b"abc\n")
    assert got["stdout"] == f"hi {tmp_path}\ngot abc\n".encode()
    assert got["stderr"] == b"err\n" and code == 7


def test_a_tty_is_the_controlling_terminal_and_resizes(tmp_path: Path) -> None:
    async def main() -> tuple[bytes, int]:
        spec = exec_spec("raw_exec", "", {}, {"PATH": os.environ["PATH"]}, str(tmp_path))
        script = "stty size; tty -s && echo is-a-tty; read line; stty size"
        session = ExecSession(["/bin/sh", "-c", script], spec, tty=True, size=(33, 77))
        await session.start()
        seen = b""
        first = asyncio.Event()

        async def output(name: str, data: bytes) -> None:
            nonlocal seen
            seen += data
            if b"is-a-tty" in seen:
                first.set()

        running = asyncio.ensure_future(session.run(output))
        await asyncio.wait_for(first.wait(), 10)
        session.resize(34, 78)  # a later change reaches the terminal too
        await session.write(b"go\n")
        code = await asyncio.wait_for(running, 10)
        await session.kill()
        return seen, code

    seen, code = asyncio.run(main())
    assert seen.index(b"33 77") < seen.index(b"is-a-tty") < seen.index(b"34 78") and code == 0


def test_bad_commands_and_drivers(tmp_path: Path) -> None:
    with pytest.raises(DriverError, match="does not support exec"):
        exec_spec("docker", "", {}, {}, str(tmp_path))
    with pytest.raises(DriverError, match="empty"):
        ExecSession([], {"env": {}, "cwd": str(tmp_path)}, tty=False)

    async def missing() -> None:
        await ExecSession(["/no/such/binary"], {"env": {}, "cwd": str(tmp_path)}, tty=True).start()

    with pytest.raises(DriverError, match="failed to exec"):
        asyncio.run(missing())
