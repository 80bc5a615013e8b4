"""Issue 1 acceptance 4: sd_notify messages seen on a real unix datagram socket."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import pytest

from tests.helpers import AgentProcess, agent_env, dev_ports_config

pytestmark = pytest.mark.slow


class NotifySocket:
    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.messages: list[str] = []

    def expect(self, field: str, timeout: float = 20.0) -> str:
        """Wait for a datagram containing ``field`` (e.g. READY=1); keep every message read."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                msg = self.sock.recv(65536).decode()
            except TimeoutError:
                break
            self.messages.append(msg)
            if field in msg.split("\n"):
                return msg
        raise AssertionError(f"no {field} within {timeout}s; got {self.messages}")

    def close(self) -> None:
        self.sock.close()


def port_accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_ready_status_watchdog_reload_stopping(tmp_path: Path) -> None:
    ports, http = dev_ports_config(tmp_path)
    (tmp_path / "leave.toml").write_text("leave_on_interrupt = true\n")
    ns = NotifySocket(tmp_path / "notify.sock")
    env = agent_env(NOTIFY_SOCKET=str(tmp_path / "notify.sock"), WATCHDOG_USEC="400000")
    agent = AgentProcess(["-dev", "-config", str(ports), "-config", str(tmp_path / "leave.toml")], env=env)
    try:
        ready = ns.expect("READY=1")
        assert port_accepts(http), "READY=1 arrived before the HTTP port accepted connections"
        assert any(line.startswith("STATUS=") for line in ready.split("\n"))
        assert any("STATUS=" in m for m in ns.messages[:-1]), "expected a STATUS= progress line before READY"
        ns.expect("WATCHDOG=1", timeout=5)
        ns.expect("WATCHDOG=1", timeout=5)  # periodic, not once
        agent.signal(signal.SIGHUP)
        reloading = ns.expect("RELOADING=1")
        assert any(x.startswith("MONOTONIC_USEC=") and x[15:].isdigit() for x in reloading.split("\n"))
        ns.expect("READY=1")
        agent.signal(signal.SIGINT)
        ns.expect("STOPPING=1")
        assert agent.wait(30) == 0
    finally:
        agent.stop()
        ns.close()
