"""A real dnsmasq on 127.0.0.1:<free port> serving given SRV and host records, for tests.

    with Dnsmasq(tmp_path, srv=[Srv("_nomad-server._tcp.service.consul", "n1.node.consul", 4648)],
                 hosts={"n1.node.consul": ["127.0.0.11"]}) as dns:
        entry = f"dns+srv://_nomad-server._tcp.service.consul?resolver={dns.address}"
        dns.restart(srv=[...], hosts={...})   # same port, new records

Needs the ``dnsmasq`` binary (Debian package ``dnsmasq-base``: only the binary, no system
service). :func:`require_dnsmasq` skips the test when it is missing, or fails it under CI=true.
The process is started in the foreground without a config file, resolv.conf or /etc/hosts,
answers only for the given domains (``--local``: other names under them are NXDOMAIN), logs
queries to ``<tmp>/dnsmasq.log``, and is killed by PID.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import pytest

from tests.helpers import free_port

__all__ = ["Dnsmasq", "Srv", "free_port", "require_dnsmasq"]

START_TIMEOUT_S = 5.0
POLL_S = 0.02


@dataclass(frozen=True, slots=True)
class Srv:
    """One SRV record: ``name`` -> ``target:port`` with RFC 2782 priority and weight."""

    name: str
    target: str
    port: int
    priority: int = 0
    weight: int = 0


def require_dnsmasq() -> str:
    """Path of the dnsmasq binary; skip the test without it (fail under CI=true)."""
    path = shutil.which("dnsmasq") or next(
        (p for p in ("/usr/sbin/dnsmasq", "/sbin/dnsmasq") if os.access(p, os.X_OK)), None
    )
    if path:
        return path
    reason = "dnsmasq not installed (apt-get install dnsmasq-base)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason + " and CI=true")
    pytest.skip(reason)


class Dnsmasq:
    """A dnsmasq process; :meth:`restart` keeps the port and replaces the records."""

    def __init__(
        self,
        tmp_dir: Path,
        *,
        srv: Iterable[Srv] = (),
        hosts: Mapping[str, Sequence[str]] | None = None,
        local_domains: Sequence[str] = ("consul", "test"),
        extra_args: Sequence[str] = (),
        host: str = "127.0.0.1",
    ) -> None:
        self.binary = require_dnsmasq()
        self.tmp_dir = Path(tmp_dir)
        self.host = host
        self.port = 0
        self.srv = list(srv)
        self.hosts = dict(hosts or {})
        self.local_domains = list(local_domains)
        self.extra_args = list(extra_args)
        self.log_path = self.tmp_dir / "dnsmasq.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """``127.0.0.1:<port>``: what ``?resolver=`` and ``discovery.dns_resolvers`` take."""
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def args(self) -> list[str]:
        argv = [
            self.binary,
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--pid-file=",
            f"--listen-address={self.host}",
            "--bind-interfaces",
            f"--port={self.port}",
            "--log-queries",
            f"--log-facility={self.log_path}",
        ]
        if os.geteuid() == 0:
            argv.append("--user=root")  # keep the log file writable; no privilege change needed
        argv += [f"--local=/{d}/" for d in self.local_domains]
        for r in self.srv:
            argv.append(f"--srv-host={r.name},{r.target},{r.port},{r.priority},{r.weight}")
        for name, addresses in self.hosts.items():
            argv.append(f"--host-record={name},{','.join(addresses)}")
        return argv + self.extra_args

    def start(self) -> None:
        """Start on a free port (first start) or the same port (restart); wait until it answers."""
        if self.proc is not None:
            raise RuntimeError("dnsmasq already running")
        attempts = 1 if self.port else 3
        for attempt in range(attempts):
            if not self.port or attempt:
                self.port = free_port(self.host)
            self.proc = subprocess.Popen(
                self.args(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
            if self._wait_ready():
                return
            output = self._kill()
        raise RuntimeError(f"dnsmasq did not start: {output.strip()}")

    def stop(self) -> None:
        """Kill by PID and reap; idempotent."""
        self._kill()

    def restart(
        self,
        *,
        srv: Iterable[Srv] | None = None,
        hosts: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        """Stop, replace the records given, start again on the same port."""
        self.stop()
        if srv is not None:
            self.srv = list(srv)
        if hosts is not None:
            self.hosts = dict(hosts)
        self.start()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _wait_ready(self) -> bool:
        """Poll with a tiny DNS query until dnsmasq answers, it exits, or the deadline passes."""
        assert self.proc is not None
        query = (
            b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"  # id, RD, one question
            b"\x05ready\x04test\x00\x00\x01\x00\x01"  # ready.test A IN
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(POLL_S * 5)
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    return False
                try:
                    sock.sendto(query, (self.host, self.port))
                    reply = sock.recv(512)
                except OSError:  # timeout or ECONNREFUSED while it is not listening yet
                    time.sleep(POLL_S)
                    continue
                if reply[:2] == query[:2]:
                    return True
        return False

    def _kill(self) -> str:
        proc, self.proc = self.proc, None
        if proc is None:
            return ""
        if proc.poll() is None:
            proc.kill()
        try:
            out, _ = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            return ""
        return out.decode(errors="replace") if out else ""

    def __enter__(self) -> Dnsmasq:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
