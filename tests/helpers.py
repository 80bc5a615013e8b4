"""Shared test helpers: free ports, polling waits with deadlines, real agent processes."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


_HANDED_OUT: set[tuple[str, int]] = set()
# Below Linux's default ephemeral range (32768-60999): the kernel never gives these ports to
# outgoing connections, so one cannot take an agent's port between free_port and its bind.
_PORT_RANGE = (20000, 32700)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port (whose UDP twin is free too) that was free a moment ago, outside the
    ephemeral range and never handed out before by this process."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(*_PORT_RANGE)
        if (host, port) in _HANDED_OUT:
            continue
        try:
            with socket.socket() as s:
                s.bind((host, port))
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                u.bind((host, port))
        except OSError:
            continue
        _HANDED_OUT.add((host, port))
        return port
    raise RuntimeError("no free port")


def wait_for(pred: Callable[[], T], timeout: float = 10.0, interval: float = 0.05, what: str = "") -> T:
    """Poll ``pred`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_err: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = pred()
            if value:
                return value
        except Exception as err:  # the condition may raise while the thing is starting
            last_err = err
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout}s waiting for {what or pred}"
        + (f" (last error: {last_err!r})" if last_err else "")
    )


async def wait_until(pred: Callable[[], object], timeout: float = 5.0, what: str = "") -> None:
    """``wait_for`` inside an event loop: poll ``pred`` without blocking the loop."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or pred}")
        await asyncio.sleep(0.01)


def agent_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOMAD_", "NOTIFY_", "WATCHDOG_"))}
    env["PYTHONPATH"] = str(ROOT)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


class AgentProcess:
    """A real ``python -m nomadd agent`` process; output collected line by line."""

    def __init__(
        self,
        args: Sequence[str],
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        entry: Sequence[str] = ("-m", "nomadd"),
    ):
        self.args = list(args)
        self.proc = subprocess.Popen(
            [sys.executable, *entry, "agent", *self.args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env or agent_env(),
            cwd=cwd or ROOT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_line(self, text: str, timeout: float = 15.0) -> str:
        def found() -> str | None:
            for line in self.lines:
                if text in line:
                    return line
            if self.proc.poll() is not None:
                time.sleep(0.1)
                raise AssertionError(f"agent exited rc={self.proc.returncode}:\n{self.output}")
            return None

        return wait_for(found, timeout, what=f"line {text!r} in agent output")

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait(self, timeout: float = 15.0) -> int:
        rc = self.proc.wait(timeout)
        self._reader.join(2)
        return rc

    def stop(self) -> None:
        """Kill this process (and only it) if it still runs."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self._reader.join(2)
        if self.proc.stdout is not None and not self._reader.is_alive():
            self.proc.stdout.close()


def run_nomadd(
    args: Sequence[str], env: dict[str, str] | None = None, timeout: float = 30.0, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nomadd", *args],
        capture_output=True,
        text=True,
        env=env or agent_env(),
        cwd=ROOT,
        timeout=timeout,
        input=input,
    )


def write_config(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def dev_ports_config(tmp: Path) -> tuple[Path, int]:
    """A config file giving a -dev agent free ports; returns (path, http_port)."""
    http, raft, serf = free_port(), free_port(), free_port()
    cfg = tmp / "ports.toml"
    cfg.write_text(f"[ports]\nhttp = {http}\nraft = {raft}\nserf = {serf}\n")
    return cfg, http


IN_CI = os.environ.get("CI") == "true"


def need(condition: bool, reason: str) -> None:
    """Skip when a real peer or root is missing — except under CI=true, where that is a failure."""
    import pytest

    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI=true but this test cannot run: {reason}")
    pytest.skip(reason)


def is_root() -> bool:
    return os.geteuid() == 0


def kill_tasks_under(root: Path) -> list[int]:
    """Kill (by PID) the task executors and tasks that agents of this test started under ``root``.

    Tasks outlive their agent on purpose (the client unit's KillMode=process), so a test that
    kills its agents must end their tasks itself. A process belongs to the test when its command
    line (an executor's spec path) or its NOMAD_ALLOC_DIR lies under the test's tmp dir.
    """
    marker = str(root)
    me = os.getpid()
    victims: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        pid = int(entry)
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        alloc_dir = next(
            (e[16:].decode(errors="replace") for e in environ if e.startswith(b"NOMAD_ALLOC_DIR=")), ""
        )
        if ("nomadd.drivers.executor" in cmdline and marker in cmdline) or alloc_dir.startswith(marker):
            victims.append(pid)
    for pid in victims:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return victims
