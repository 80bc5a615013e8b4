"""A reusable harness of real ``python -m nomadd agent`` processes (servers and clients).

Each agent gets its own loopback address (127.0.0.x works on Linux without configuration),
free ports, a tmp data dir and a TOML config; it is started with :meth:`Agent.start`, killed by
PID with :meth:`Agent.kill`, and :meth:`Cluster.close` (call it in ``finally``) kills every
process the cluster started, only those. Waits poll with deadlines.

Example::

    cluster = Cluster(tmp_path)
    try:
        servers = [cluster.add_server(bootstrap_expect=3) for _ in range(3)]
        cluster.link(servers)            # retry_join each other's serf ports
        for s in servers:
            s.start()
        leader = cluster.wait_leader(servers)
        leader.api("PUT", "/v1/var/a", {"Items": {"k": "v"}})
        client = cluster.add_client(servers=servers, extra={"client": {"node_class": "x"}})
    finally:
        cluster.close()

``Cluster(tmp_path, tls=True)`` makes a CA and per-agent certificates with ``nomadd tls`` and runs
every agent with mutual TLS (``verify_server_hostname``, ``verify_https_client``); the harness
and ``Agent.cli`` then speak https with a CLI certificate (``ClusterTLS``).
"""

from __future__ import annotations

import json
import secrets
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tests.helpers import ROOT, agent_env, free_port, kill_tasks_under, wait_for
from tests.integration.netns import netns_http

__all__ = ["Agent", "Cluster", "ClusterTLS", "HTTPError", "to_toml"]

T = TypeVar("T")


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def to_toml(doc: Mapping[str, Any], prefix: str = "") -> str:
    """A minimal TOML writer (scalars, arrays, nested tables) for test configs."""
    lines: list[str] = []
    tables: list[tuple[str, Mapping[str, Any]]] = []
    for k, v in doc.items():
        if isinstance(v, Mapping):
            tables.append((f"{prefix}{k}", v))
        else:
            lines.append(f"{k} = {_toml_value(v)}")
    out = "\n".join(lines) + ("\n" if lines else "")
    for name, sub in tables:
        out += f"\n[{name}]\n" + to_toml(sub, prefix=f"{name}.")
    return out


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    for k, v in extra.items():
        if isinstance(v, Mapping) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = v
    return base


class AgentRun:
    """One run of an agent process (optionally behind a command prefix such as
    ``ip netns exec <ns>``); output collected line by line; killed only by its own PID."""

    def __init__(self, args: Sequence[str], wrap: Sequence[str] = ()) -> None:
        self.proc = subprocess.Popen(
            [*wrap, sys.executable, "-m", "nomadd", "agent", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=agent_env(),
            cwd=ROOT,
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

    def wait(self, timeout: float) -> int:
        rc = self.proc.wait(timeout)
        self._reader.join(2)
        return rc

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self._reader.join(2)
        if self.proc.stdout is not None and not self._reader.is_alive():
            self.proc.stdout.close()


class HTTPError(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body


def nomadd_tls(cwd: Path, *args: str) -> None:
    """``nomadd tls <args>`` in ``cwd`` (the product's own CA tooling makes the test certificates)."""
    cwd.mkdir(parents=True, exist_ok=True)
    out = subprocess.run(
        [sys.executable, "-m", "nomadd", "tls", *args],
        capture_output=True,
        text=True,
        env=agent_env(),
        cwd=cwd,
        timeout=30,
    )
    assert out.returncode == 0, out.stdout + out.stderr


@dataclass(frozen=True)
class ClusterTLS:
    """A CA made by ``nomadd tls ca create`` in ``root``, and a CLI certificate for the harness."""

    root: Path
    region: str = "global"

    @classmethod
    def create(cls, root: Path, region: str = "global") -> ClusterTLS:
        tls = cls(root, region)
        nomadd_tls(root, "ca", "create")
        tls.issue("cli", root / "cli")
        return tls

    @property
    def ca(self) -> Path:
        return self.root / "nomad-agent-ca.pem"

    def issue(self, kind: str, dest: Path) -> tuple[Path, Path]:
        """``nomadd tls cert create -<kind>`` into ``dest`` (which must not hold one yet)."""
        nomadd_tls(
            dest,
            "cert",
            "create",
            f"-{kind}",
            "-region",
            self.region,
            "-ca",
            str(self.ca),
            "-key",
            str(self.root / "nomad-agent-ca-key.pem"),
        )
        return dest / f"{self.region}-{kind}-nomad.pem", dest / f"{self.region}-{kind}-nomad-key.pem"

    @property
    def cli_cert(self) -> tuple[Path, Path]:
        d = self.root / "cli"
        return d / f"{self.region}-cli-nomad.pem", d / f"{self.region}-cli-nomad-key.pem"

    def context(self) -> ssl.SSLContext:
        """The harness's client context: trusts the CA, presents the CLI certificate, does not
        check names (agents listen on 127.0.0.x; their certificates name their role)."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(cafile=str(self.ca))
        cert, key = self.cli_cert
        ctx.load_cert_chain(str(cert), str(key))
        ctx.check_hostname = False
        return ctx

    def env(self) -> dict[str, str]:
        """The CLI's environment (Nomad's variables), checking the server name."""
        cert, key = self.cli_cert
        return {
            "NOMAD_CACERT": str(self.ca),
            "NOMAD_CLIENT_CERT": str(cert),
            "NOMAD_CLIENT_KEY": str(key),
            "NOMAD_TLS_SERVER_NAME": f"server.{self.region}.nomad",
        }


@dataclass
class Agent:
    """One agent process of the cluster (not started until :meth:`start`)."""

    name: str
    ip: str
    http_port: int
    raft_port: int
    serf_port: int
    data_dir: Path
    config: dict[str, Any]
    config_path: Path
    server: bool
    client: bool
    wrap: tuple[str, ...] = ()  # command prefix, e.g. ("ip", "netns", "exec", "ns1")
    tls: ClusterTLS | None = None
    proc: AgentRun | None = None
    runs: list[AgentRun] = field(default_factory=list)

    @property
    def http_addr(self) -> str:
        return f"{self.ip}:{self.http_port}"

    @property
    def raft_addr(self) -> str:
        return f"{self.ip}:{self.raft_port}"

    @property
    def serf_addr(self) -> str:
        return f"{self.ip}:{self.serf_port}"

    @property
    def member_name(self) -> str:
        return f"{self.name}.{self.config.get('region', 'global')}"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.http_addr}"

    def write_config(self) -> None:
        self.config_path.write_text(to_toml(self.config))

    def start(self, *extra_args: str) -> Agent:
        self.write_config()
        self.proc = AgentRun(["-config", str(self.config_path), *extra_args], self.wrap)
        self.runs.append(self.proc)
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.proc.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to this agent's process (by PID); SIGKILL also waits for it."""
        if self.proc is not None and self.proc.proc.poll() is None:
            self.proc.proc.send_signal(sig)
            if sig == signal.SIGKILL:
                self.proc.proc.wait(10)

    def wait_exit(self, timeout: float = 20.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    @property
    def output(self) -> str:
        return "\n".join(p.output for p in self.runs)

    def wait_http(self, timeout: float = 20.0) -> None:
        def up() -> bool:
            if not self.running():
                raise AssertionError(f"agent {self.name} exited:\n{self.output[-4000:]}")
            try:
                self.api("GET", "/v1/agent/self", timeout=1.0)
            except (HTTPError, OSError):
                return False
            return True

        wait_for(up, timeout, what=f"{self.name} http up")

    def api(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        timeout: float = 10.0,
    ) -> Any:
        """JSON API call; raises :class:`HTTPError` on a non-2xx status."""
        value, _ = self.api_meta(method, path, body, params, timeout)
        return value

    def api_meta(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        timeout: float = 10.0,
    ) -> tuple[Any, Mapping[str, str]]:
        if self.wrap:
            status, text = netns_http(self.wrap, method, self.url + path, body, params, timeout)
            if status == 0:
                raise OSError(text)
            if status >= 300:
                raise HTTPError(status, text)
            return (json.loads(text) if text else None), {}
        qs = ("?" + urllib.parse.urlencode(params)) if params else ""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path + qs, data=data, method=method)
        ctx = self.tls.context() if self.tls is not None else None
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=ctx) as resp:
                raw = resp.read()
                headers = dict(resp.headers)
        except urllib.error.HTTPError as err:
            raise HTTPError(err.code, err.read().decode(errors="replace")) from None
        return (json.loads(raw) if raw else None), headers

    def cli(
        self, *args: str, timeout: float = 30.0, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """``nomadd <args>`` with ``NOMAD_ADDR`` pointing at this agent (plus ``env``)."""
        return subprocess.run(
            [*self.wrap, sys.executable, "-m", "nomadd", *args],
            capture_output=True,
            text=True,
            env=agent_env(**{"NOMAD_ADDR": self.url, **(self.tls.env() if self.tls else {}), **(env or {})}),
            cwd=ROOT,
            timeout=timeout,
        )


CREATED: list[Cluster] = []  # clusters of the running test (tests/integration/conftest.py)


class Cluster:
    """Agents on 127.0.0.<n>; :meth:`close` kills every process this cluster started."""

    def __init__(
        self,
        tmp_path: Path,
        *,
        raft_secret: str | None = None,
        encrypt: str | None = None,
        first_ip: int = 1,
        tls: bool = False,
    ) -> None:
        CREATED.append(self)
        self.tls = ClusterTLS.create(tmp_path / "tls") if tls else None
        self.tmp = tmp_path
        self.raft_secret = raft_secret or secrets.token_urlsafe(24)
        self.encrypt = encrypt
        self.agents: list[Agent] = []
        self._next_ip = first_ip

    def _new_agent(
        self,
        *,
        name: str | None,
        ip: str | None,
        server: bool,
        client: bool,
        extra: Mapping[str, Any],
        wrap: Sequence[str] = (),
        cert_kind: str = "",
    ) -> Agent:
        if ip is None:
            ip = f"127.0.0.{self._next_ip}"
            self._next_ip += 1
        name = name or f"{'server' if server else 'client'}{len(self.agents) + 1}"
        if wrap:  # its own network namespace: the default ports are free there
            ports = {"http": 4646, "raft": 4647, "serf": 4648}
        else:
            ports = {"http": free_port(ip), "raft": free_port(ip), "serf": free_port(ip)}
        data_dir = self.tmp / name
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        cfg: dict[str, Any] = {
            "name": name,
            "data_dir": str(data_dir),
            "bind_addr": ip,
            "log_level": "DEBUG",
            "ports": ports,
            "advertise": {
                "http": f"{ip}:{ports['http']}",
                "raft": f"{ip}:{ports['raft']}",
                "serf": f"{ip}:{ports['serf']}",
            },
        }
        if self.tls is not None:
            cert, key = self.tls.issue(
                cert_kind or ("server" if server else "client"), self.tmp / f"{name}-tls"
            )
            cfg["tls"] = {
                "http": True,
                "rpc": True,
                "ca_file": str(self.tls.ca),
                "cert_file": str(cert),
                "key_file": str(key),
                "verify_server_hostname": True,
                "verify_https_client": True,
            }
        _merge(cfg, extra)
        agent = Agent(
            name=name,
            ip=ip,
            http_port=ports["http"],
            raft_port=ports["raft"],
            serf_port=ports["serf"],
            data_dir=data_dir,
            config=cfg,
            config_path=self.tmp / f"{name}.toml",
            server=server,
            client=client,
            wrap=tuple(wrap),
            tls=self.tls,
        )
        self.agents.append(agent)
        return agent

    def add_server(
        self,
        *,
        bootstrap_expect: int = 3,
        name: str | None = None,
        ip: str | None = None,
        extra: Mapping[str, Any] | None = None,
        wrap: Sequence[str] = (),
        cert_kind: str = "",
    ) -> Agent:
        """A server agent (not started). ``wrap`` runs it behind a prefix (a netns).
        ``cert_kind`` gives it another role's certificate (with ``tls``)."""
        server: dict[str, Any] = {
            "enabled": True,
            "bootstrap_expect": bootstrap_expect,
            "raft_secret": self.raft_secret,
        }
        if self.encrypt:
            server["encrypt"] = self.encrypt
        base = {"server": server}
        _merge(base, extra or {})
        return self._new_agent(
            name=name, ip=ip, server=True, client=False, extra=base, wrap=wrap, cert_kind=cert_kind
        )

    def add_client(
        self,
        *,
        servers: Sequence[Agent] = (),
        name: str | None = None,
        ip: str | None = None,
        extra: Mapping[str, Any] | None = None,
        wrap: Sequence[str] = (),
    ) -> Agent:
        """A client agent (not started) pointed at ``servers``' HTTP addresses."""
        base: dict[str, Any] = {"client": {"enabled": True, "servers": [s.http_addr for s in servers]}}
        _merge(base, extra or {})
        return self._new_agent(name=name, ip=ip, server=False, client=True, extra=base, wrap=wrap)

    @staticmethod
    def link(servers: Sequence[Agent]) -> None:
        """Make every server retry-join the others' serf addresses (every 1 s)."""
        for s in servers:
            others = [o.serf_addr for o in servers if o is not s]
            join = s.config["server"].setdefault("server_join", {})
            join["retry_join"] = others
            join["retry_interval"] = "1s"

    def start_servers(self, n: int = 3) -> tuple[list[Agent], Agent]:
        """``n`` linked servers started; returns them and their leader once they agree."""
        servers = [self.add_server(bootstrap_expect=n) for _ in range(n)]
        self.link(servers)
        for s in servers:
            s.start()
        return servers, self.wait_leader(servers)

    def close(self) -> None:
        for a in self.agents:
            for p in a.runs:
                p.stop()
        kill_tasks_under(self.tmp)

    # ---- waits ---------------------------------------------------------------------------
    @staticmethod
    def wait_for(pred: Callable[[], T], timeout: float = 20.0, what: str = "") -> T:
        return wait_for(pred, timeout, what=what)

    def leader_of(self, servers: Iterable[Agent]) -> Agent | None:
        """The server every running one of ``servers`` names as leader, if it is one of them
        (None while they differ or name an outsider, e.g. a partitioned old leader)."""
        alive = [s for s in servers if s.running()]
        by_raft = {s.raft_addr: s for s in self.agents}
        seen = set()
        for s in alive:
            try:
                seen.add(s.api("GET", "/v1/status/leader", timeout=2.0))
            except (HTTPError, OSError):
                return None
        if len(seen) != 1:
            return None
        leader = by_raft.get(seen.pop())
        return leader if leader is not None and leader in alive else None

    def wait_leader(self, servers: Iterable[Agent], timeout: float = 30.0) -> Agent:
        group = list(servers)
        return wait_for(lambda: self.leader_of(group), timeout, what="one agreed leader")

    @staticmethod
    def members(agent: Agent) -> dict[str, str]:
        """Member name -> gossip status, as ``agent`` sees it."""
        reply = agent.api("GET", "/v1/agent/members", timeout=3.0)
        return {m["Name"]: m["Status"] for m in reply["Members"]}

    @staticmethod
    def peers(agent: Agent) -> list[str]:
        return sorted(agent.api("GET", "/v1/status/peers", timeout=3.0))


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    t0 = time.monotonic()
    value = fn()
    return value, time.monotonic() - t0
