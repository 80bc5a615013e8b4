"""Shared test helpers: free ports, polling waits with deadlines, real agent processes."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from nomadd.agent.http.server import UNEXPECTED_MARKER

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


def unexpected_errors(output: str) -> list[str]:
    """The log lines of requests that failed with an exception no handler expected (a 500 with
    a request ID): any of them fails the test that started the agent (tests/conftest.py)."""
    return [line for line in output.splitlines() if UNEXPECTED_MARKER in line]


STARTED: list[AgentProcess] = []  # agents of the running test, scanned at teardown


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
        STARTED.append(self)

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


@dataclasses.dataclass
class DevAgent:
    """A ``-dev`` agent (server and client in one process) and raw HTTP calls to it."""

    agent: AgentProcess
    port: int
    raft_secret: str = ""  # the cluster secret: sign internal RPCs as a server with it

    @classmethod
    @contextlib.contextmanager
    def running(cls, tmp: Path, *configs: Path) -> Iterator[DevAgent]:
        """Start one with free ports, wait for its leader and ready node; stop it afterwards."""
        cfg, port = dev_ports_config(tmp)
        secret = "dev-" + os.urandom(16).hex()
        secret_cfg = tmp / "secret.toml"
        secret_cfg.write_text(f'[server]\nraft_secret = "{secret}"\n')
        args = ["-dev", "-config", str(cfg), "-config", str(secret_cfg)]
        for extra in configs:
            args += ["-config", str(extra)]
        agent = AgentProcess(args)
        try:
            agent.wait_line("agent started!", timeout=30)
            d = cls(agent, port, secret)
            wait_for(lambda: d.request("GET", "/v1/status/leader")[1].strip('"'), timeout=30, what="a leader")
            wait_for(
                lambda: [n for n in d.json("GET", "/v1/nodes") if n["Status"] == "ready"],
                timeout=30,
                what="the dev node",
            )
            yield d
        finally:
            agent.signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                agent.wait(20)
            agent.stop()

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30.0,
    ) -> tuple[int, str, float]:
        """(status, body text, seconds) of one raw request."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            start = time.monotonic()
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            text = resp.read().decode(errors="replace")
            return resp.status, text, time.monotonic() - start
        finally:
            conn.close()

    def server_auth(self, rpc_method: str, body: bytes) -> dict[str, str]:
        """Headers signing an internal RPC as a server of this cluster (docs/security.md)."""
        from nomadd.rpc.auth import ServerSigner

        return ServerSigner(self.raft_secret)(rpc_method, body)

    def json(self, method: str, path: str, doc: object = None) -> Any:
        status, text, _ = self.request(method, path, None if doc is None else json.dumps(doc).encode())
        assert status == 200, (status, text[:500])
        return json.loads(text) if text else None

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.agent.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmRSS")
