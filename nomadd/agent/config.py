"""Agent configuration: files + flags → one frozen ``AgentConfig``, validated once.

Load order (Nomad's): defaults (or dev defaults with ``-dev``) → each ``-config`` path in
command-line order (a directory contributes its ``*.toml`` files in lexical order) → flags. See
``config_schema`` for the per-file check and the merge rules, and ``docs/configuration.md``.
Everything deeper in the code reads these frozen dataclasses, never raw dicts.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import os
import re
import socket
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from nomadd.agent.config_schema import Partial, check_file, merge
from nomadd.client.config import ClientConfig, DrainOnShutdown, Reserved
from nomadd.helper.duration import parse_duration
from nomadd.server.config import ServerConfig
from nomadd.server.events.broker import DEFAULT_EVENT_BUFFER_SIZE
from nomadd.structs.config import ACLConfig, Advertise, DiscoveryConfig, Ports, ServerJoin, TLSConfig
from nomadd.structs.errors import ConfigError
from nomadd.structs.limits import Limits
from nomadd.structs.network import parse_port_list
from nomadd.structs.node import DEFAULT_MAX_DYNAMIC_PORT, DEFAULT_MIN_DYNAMIC_PORT
from nomadd.structs.requests.autopilot import AutopilotConfig
from nomadd.structs.volumes import ClientHostVolumeConfig

__all__ = [
    "LOG_LEVELS",
    "AgentConfig",
    "ConfigSources",
    "build_config",
    "load_config",
    "parse_duration",
    "read_sources",
]

LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "OFF")
_REGION_RE = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
_EDITOR_TEMP = re.compile(r"(~$)|(^\.#)|(^#.*#$)")
# Top-level settings the server's and the client's configs carry a copy of.
_AGENT_WIDE = (
    "region",
    "datacenter",
    "name",
    "dev_mode",
    "bind_addr",
    "ports",
    "addresses",
    "advertise",
    "discovery",
    "local_server",
    "tls",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentConfig:
    region: str = "global"
    datacenter: str = "dc1"
    name: str = ""
    data_dir: str = ""
    bind_addr: str = "0.0.0.0"
    ports: Ports = Ports()
    addresses: Advertise | None = None
    advertise: Advertise = Advertise(http="", raft="", serf="")
    log_level: str = "INFO"
    log_json: bool = False
    leave_on_interrupt: bool = False
    leave_on_terminate: bool = False
    dev_mode: bool = False
    prometheus_metrics: bool = False
    server: ServerConfig = ServerConfig()
    client: ClientConfig = ClientConfig()
    acl: ACLConfig = ACLConfig()
    discovery: DiscoveryConfig = DiscoveryConfig()
    tls: TLSConfig = TLSConfig()
    files: tuple[str, ...] = ()

    def redacted(self) -> dict[str, Any]:
        """The config as a JSON-able dict with secrets replaced, for /v1/agent/self."""
        from dataclasses import asdict

        out = asdict(self)
        for block in ("server", "client"):  # the agent-wide settings both copy are shown once
            for key in _AGENT_WIDE:
                out[block].pop(key, None)
        out["server"]["encrypt"] = "<redacted>" if self.server.encrypt else ""
        out["server"]["raft_secret"] = "<redacted>" if self.server.raft_secret else ""
        for holder in (out, out["server"]):
            if "acl" in holder:
                holder["acl"]["replication_token"] = "<redacted>" if self.acl.replication_token else ""
        return out


@dataclass(frozen=True, slots=True)
class ConfigSources:
    """What the command line asked for: config paths, flag values, dev mode, a dev data dir."""

    paths: tuple[str, ...] = ()
    flags: Partial = field(default_factory=dict)
    dev: bool = False
    dev_data_dir: str = ""


def dev_defaults() -> Partial:
    """Nomad's ``DevConfig()``: server+client on 127.0.0.1, DEBUG, bootstrap_expect 1, raw_exec."""
    return {
        "bind_addr": "127.0.0.1",
        "log_level": "DEBUG",
        "server": {"enabled": True, "bootstrap_expect": 1},
        "client": {"enabled": True},
        "plugin": {"raw_exec": {"config": {"enabled": True}}},
        "telemetry": {"prometheus_metrics": True},
    }


def read_sources(paths: Sequence[str]) -> tuple[Partial, tuple[str, ...], tuple[str, ...]]:
    """Read every -config path in order. Returns (merged partial, files loaded, warnings)."""
    merged: Partial = {}
    loaded: list[str] = []
    warnings: list[str] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            files = sorted(
                f
                for f in p.iterdir()
                if f.suffix == ".toml" and f.is_file() and not _EDITOR_TEMP.search(f.name)
            )
        elif p.exists():
            files = [p]
        else:
            raise ConfigError(f"{raw}: no such file or directory")
        if not files:
            warnings.append(f"No configuration loaded from {raw}")
        for f in files:
            merged = merge(merged, _read_file(f))
            loaded.append(str(f.absolute()))
    return merged, tuple(loaded), tuple(warnings)


def _read_file(path: Path) -> Partial:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: invalid TOML: {err}") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {err.strerror}") from None
    return check_file(data, str(path))


def load_config(sources: ConfigSources) -> tuple[AgentConfig, tuple[str, ...]]:
    """Files + flags → validated AgentConfig, plus warnings to print (e.g. empty config dirs)."""
    from_files, files, warnings = read_sources(sources.paths)
    base = dev_defaults() if sources.dev else {}
    partial = merge(merge(base, from_files), sources.flags)
    cfg = build_config(partial, dev=sources.dev, dev_data_dir=sources.dev_data_dir)
    return replace(cfg, files=files), warnings


def _get(p: Partial, dotted: str, default: Any = None) -> Any:
    cur: Any = p
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return default
        cur = cur[part]
    return cur


def build_config(p: Partial, *, dev: bool = False, dev_data_dir: str = "") -> AgentConfig:
    """Build and validate the AgentConfig from a merged partial (Nomad's IsValidConfig checks)."""
    server_on = bool(_get(p, "server.enabled", False))
    client_on = bool(_get(p, "client.enabled", False))
    if not (server_on or client_on or dev):
        raise ConfigError("Must specify either server, client or dev mode for the agent.")

    log_level = str(_get(p, "log_level", "INFO")).upper()
    if log_level not in LOG_LEVELS:
        raise ConfigError(
            f"Invalid log level: {_get(p, 'log_level')}. Valid log levels are: [{' '.join(LOG_LEVELS)}]"
        )
    region = _get(p, "region", "global")
    if not _REGION_RE.match(region):
        raise ConfigError("Region contains invalid characters")
    datacenter = _get(p, "datacenter", "dc1")
    if not datacenter or "\x00" in datacenter or "*" in datacenter:
        raise ConfigError("Datacenter contains invalid characters (null or '*')")
    acl = ACLConfig(
        enabled=bool(_get(p, "acl.enabled", False)),
        token_ttl=_get(p, "acl.token_ttl", 30.0),
        policy_ttl=_get(p, "acl.policy_ttl", 30.0),
        role_ttl=_get(p, "acl.role_ttl", 30.0),
        token_min_expiration_ttl=_get(p, "acl.token_min_expiration_ttl", 60.0),
        token_max_expiration_ttl=_get(p, "acl.token_max_expiration_ttl", 86400.0),
        replication_token=_get(p, "acl.replication_token", ""),
        replication_interval=_get(p, "acl.replication_interval", 5.0),
    )
    if acl.token_min_expiration_ttl > acl.token_max_expiration_ttl:
        raise ConfigError(
            "acl.token_min_expiration_ttl must not be greater than acl.token_max_expiration_ttl"
        )

    data_dir = _get(p, "data_dir", "") or (dev_data_dir if dev else "")
    if data_dir and not os.path.isabs(data_dir):
        raise ConfigError(f"data-dir must be given as an absolute path: got {data_dir}")
    if (server_on or client_on) and not data_dir:
        raise ConfigError('Must specify "data_dir" config option or "data-dir" CLI flag')

    ports = Ports(**_get(p, "ports", {}))
    for pname in ("http", "raft", "serf"):
        value = getattr(ports, pname)
        if not 0 < value < 65536:
            raise ConfigError(f"ports.{pname}: {value} is not a valid port (1-65535)")

    bind = _get(p, "bind_addr", "0.0.0.0")
    _check_ip("bind_addr", bind)
    addresses = Advertise(
        http=_get(p, "addresses.http", bind),
        raft=_get(p, "addresses.raft", bind),
        serf=_get(p, "addresses.serf", bind),
    )
    # Only servers use the Raft (RPC) and Serf addresses: a client-only agent is never asked for
    # them, so a client bound to loopback needs advertise.http alone.
    advertise = Advertise(
        http=_advertise("http", _get(p, "advertise.http"), addresses.http, ports.http, dev),
        raft=_advertise("raft", _get(p, "advertise.raft"), addresses.raft, ports.raft, dev)
        if server_on
        else "",
        serf=_advertise("serf", _get(p, "advertise.serf"), addresses.serf, ports.serf, dev)
        if server_on
        else "",
    )

    name = _get(p, "name", "") or socket.gethostname()
    discovery = DiscoveryConfig(dns_resolvers=tuple(_get(p, "discovery.dns_resolvers", ())))
    tls = _build_tls(p, region)
    common: dict[str, Any] = {
        "region": region,
        "datacenter": datacenter,
        "name": name,
        "dev_mode": dev,
        "advertise": advertise,
        "discovery": discovery,
        "tls": tls,
    }
    server = _build_server(p, server_on, dev, data_dir, common)
    server = replace(server, bind_addr=bind, ports=ports, addresses=addresses, acl=acl)
    client = _build_client(p, client_on, dev, data_dir, common)
    if server_on:
        client = replace(client, local_server=advertise.http)
    _check_discovery(server, client, discovery.dns_resolvers)
    return AgentConfig(
        region=region,
        datacenter=datacenter,
        name=name,
        data_dir=data_dir,
        bind_addr=bind,
        ports=ports,
        addresses=addresses,
        advertise=advertise,
        log_level=log_level,
        log_json=bool(_get(p, "log_json", False)),
        leave_on_interrupt=bool(_get(p, "leave_on_interrupt", False)),
        leave_on_terminate=bool(_get(p, "leave_on_terminate", False)),
        dev_mode=dev,
        prometheus_metrics=bool(_get(p, "telemetry.prometheus_metrics", False)),
        server=server,
        client=client,
        acl=acl,
        discovery=discovery,
        tls=tls,
    )


def _build_tls(p: Partial, region: str) -> TLSConfig:
    """The ``tls`` block: relative file paths are an error (the agent may chdir), checked here."""
    from nomadd.rpc.tls import check_config

    t: Partial = _get(p, "tls", {})
    for key in ("ca_file", "cert_file", "key_file"):
        if t.get(key) and not os.path.isabs(t[key]):
            raise ConfigError(f"tls.{key}: must be an absolute path, got {t[key]}")
    cfg = TLSConfig(**t, region=region)
    check_config(cfg)
    return cfg


def _build_server(
    p: Partial, enabled: bool, dev: bool, data_dir: str, common: dict[str, Any]
) -> ServerConfig:
    s: Partial = _get(p, "server", {})
    expect = s.get("bootstrap_expect", 0)
    if expect and not enabled:
        raise ConfigError("Bootstrap requires server mode to be enabled")
    if expect < 0:
        raise ConfigError(f"server.bootstrap_expect: must not be negative, got {expect}")
    if s.get("raft_protocol", 3) != 3:
        raise ConfigError("raft_protocol must be 3 in Nomad v1.4 and later")
    multiplier = s.get("raft_multiplier", 1) or 1
    if not 1 <= multiplier <= 10:
        raise ConfigError(f"server.raft_multiplier: must be between 1 and 10, got {multiplier}")
    rate = s.get("max_heartbeats_per_second", 50.0)
    if rate <= 0:
        raise ConfigError(f"server.max_heartbeats_per_second: must be positive, got {rate:g}")
    encrypt: bytes | None = None
    if s.get("encrypt"):
        try:
            encrypt = base64.b64decode(s["encrypt"], validate=True)
        except ValueError:
            raise ConfigError("server.encrypt: not valid base64") from None
        if len(encrypt) not in (16, 24, 32):
            raise ConfigError(
                f"server.encrypt: key must be 16, 24 or 32 bytes once decoded, got {len(encrypt)}"
            )
    limits = Limits(**s.get("limits", {}))
    if limits.problems():
        raise ConfigError(f"server.limits.{limits.problems()[0]}")
    secret = s.get("raft_secret", "")
    if secret and len(secret) < 16:
        raise ConfigError("server.raft_secret: must be at least 16 characters")
    if not secret and encrypt:
        secret = hashlib.sha256(b"nomadd raft secret\x00" + encrypt).hexdigest()
    if not secret and dev:
        secret = base64.urlsafe_b64encode(os.urandom(24)).decode()
    if enabled and not secret:
        raise ConfigError(
            "server.raft_secret: servers need a cluster secret (the Raft transport is encrypted "
            "with it); set server.raft_secret or server.encrypt (e.g. from `nomadd operator keygen`)"
        )
    return ServerConfig(
        **common,
        enabled=enabled,
        bootstrap_expect=expect,
        encrypt=encrypt,
        raft_secret=secret,
        raft_multiplier=multiplier,
        heartbeat_grace=s.get("heartbeat_grace", 10.0),
        min_heartbeat_ttl=s.get("min_heartbeat_ttl", 10.0),
        max_heartbeats_per_second=rate,
        failover_heartbeat_ttl=s.get("failover_heartbeat_ttl", 300.0),
        node_gc_threshold=s.get("node_gc_threshold", 24 * 3600.0),
        node_gc_interval=s.get("node_gc_interval", 300.0),
        deployment_gc_threshold=s.get("deployment_gc_threshold", 3600.0),
        num_schedulers=s.get("num_schedulers", 0) or (os.cpu_count() or 1),
        **_scheduler_split(s),
        event_buffer_size=_event_buffer_size(s.get("event_buffer_size", 0)),
        rejoin_after_leave=bool(s.get("rejoin_after_leave", False)),
        authoritative_region=_authoritative_region(s.get("authoritative_region", "")),
        server_join=ServerJoin(**s.get("server_join", {})),
        data_dir=os.path.join(data_dir, "server") if data_dir else "",
        limits=limits,
        **_operator_settings(p, data_dir),
    )


def _scheduler_split(s: Partial) -> dict[str, Any]:
    """``leader_schedulers`` / ``follower_schedulers`` (the split of scheduling workers between
    the leader and each follower) and ``eval_nack_timeout``."""
    leader = s.get("leader_schedulers")
    follower = s.get("follower_schedulers", 0)
    if (leader is not None and leader < 0) or follower < 0:
        raise ConfigError("server.leader_schedulers, server.follower_schedulers: must be 0 or more")
    if leader == 0 and follower == 0:
        raise ConfigError(
            "server.leader_schedulers = 0 needs server.follower_schedulers > 0: nothing would schedule"
        )
    timeout = s.get("eval_nack_timeout", 60.0)
    if timeout <= 0:
        raise ConfigError(f"server.eval_nack_timeout: must be positive, got {timeout}")
    return {"leader_schedulers": leader, "follower_schedulers": follower, "eval_nack_timeout": timeout}


def _authoritative_region(region: str) -> str:
    if region and not _REGION_RE.match(region):
        raise ConfigError("server.authoritative_region: Region contains invalid characters")
    return region


def _event_buffer_size(value: int) -> int:
    """``server.event_buffer_size``: 0 means Nomad's default (100); negative is an error."""
    if value < 0:
        raise ConfigError(f"server.event_buffer_size: must be 0 (the default, 100) or more, got {value}")
    return value or DEFAULT_EVENT_BUFFER_SIZE


def _operator_settings(p: Partial, data_dir: str) -> dict[str, Any]:
    """The `autopilot` block (Nomad's defaults) and `server.snapshot` as ServerConfig fields."""
    a: Partial = _get(p, "autopilot", {})
    snap: Partial = _get(p, "server.snapshot", {})
    autopilot = AutopilotConfig(
        cleanup_dead_servers=bool(a.get("cleanup_dead_servers", True)),
        last_contact_threshold_s=a.get("last_contact_threshold", 0.2),
        max_trailing_logs=a.get("max_trailing_logs", 250),
        server_stabilization_time_s=a.get("server_stabilization_time", 10.0),
        min_quorum=a.get("min_quorum", 0),
    )
    if autopilot.last_contact_threshold_s <= 0 or autopilot.max_trailing_logs < 0 or autopilot.min_quorum < 0:
        raise ConfigError(
            "autopilot: last_contact_threshold must be positive, "
            "max_trailing_logs and min_quorum must not be negative"
        )
    retain = snap.get("retain", 24)
    if retain < 1:
        raise ConfigError(f"server.snapshot.retain: must be at least 1, got {retain}")
    path = snap.get("path", "") or (os.path.join(data_dir, "server", "snapshots") if data_dir else "")
    return {
        "autopilot": autopilot,
        "snapshot_interval": snap.get("interval", 0.0),
        "snapshot_retain": retain,
        "snapshot_path": path,
    }


def _build_client(
    p: Partial, enabled: bool, dev: bool, data_dir: str, common: dict[str, Any]
) -> ClientConfig:
    c: Partial = _get(p, "client", {})
    join: Partial = c.get("server_join", {})
    if join.get("start_join"):
        raise ConfigError("client.server_join.start_join: start_join is not supported for Nomad clients")
    options = dict(c.get("options", {}))
    raw_exec = bool(_get(p, "plugin.raw_exec.config.enabled", False)) or options.get(
        "driver.raw_exec.enable", ""
    ).lower() in ("1", "true")
    for key in ("cpu_total_compute", "memory_total_mb", "disk_total_mb"):
        if c.get(key, 0) < 0:
            raise ConfigError(f"client.{key}: must not be negative")
    reserved = Reserved(**c.get("reserved", {}))
    for key in ("cpu", "memory", "disk"):
        if getattr(reserved, key) < 0:
            raise ConfigError(f"client.reserved.{key}: must not be negative")
    if c.get("node_pool") == "all":
        raise ConfigError('client.node_pool: "all" is a reserved node pool name')
    try:
        parse_port_list(reserved.reserved_ports)
    except ValueError as err:
        raise ConfigError(f"client.reserved.reserved_ports: {err}") from None
    lo = c.get("min_dynamic_port", DEFAULT_MIN_DYNAMIC_PORT)
    hi = c.get("max_dynamic_port", DEFAULT_MAX_DYNAMIC_PORT)
    if not 1 <= lo <= hi <= 65535:
        raise ConfigError(
            f"client.min_dynamic_port/max_dynamic_port: need 1 <= min <= max <= 65535; got {lo} and {hi}"
        )
    drain = c.get("drain_on_shutdown")
    drain_on_shutdown = None if drain is None else DrainOnShutdown(**drain)  # the schema refused < 0
    return ClientConfig(
        **common,
        drain_on_shutdown=drain_on_shutdown,
        enabled=enabled,
        servers=tuple(c.get("servers", ())),
        node_class=c.get("node_class", ""),
        node_pool=c.get("node_pool", "default") or "default",
        meta=dict(c.get("meta", {})),
        options=options,
        host_volumes={
            name: ClientHostVolumeConfig(name=name, path=v["path"], read_only=v["read_only"])
            for name, v in c.get("host_volume", {}).items()
        },
        network_interface=c.get("network_interface", "") or ("lo" if dev else ""),
        reserved=reserved,
        server_join=ServerJoin(**join),
        state_dir=c.get("state_dir", "") or (os.path.join(data_dir, "client") if data_dir else ""),
        alloc_dir=c.get("alloc_dir", "") or (os.path.join(data_dir, "alloc") if data_dir else ""),
        max_kill_timeout=c.get("max_kill_timeout", 30.0),
        raw_exec_enabled=raw_exec,
        exec_enabled=bool(_get(p, "plugin.exec.config.enabled", True)),
        plugin_config={name: dict(block.get("config", {})) for name, block in _get(p, "plugin", {}).items()},
        exec_options=_exec_options(_get(p, "plugin.exec.config", {})),
        cpu_total_compute=c.get("cpu_total_compute", 0),
        memory_total_mb=c.get("memory_total_mb", 0),
        disk_total_mb=c.get("disk_total_mb", 0),
        min_dynamic_port=lo,
        max_dynamic_port=hi,
    )


def _exec_options(c: Partial) -> dict[str, str]:
    """The exec plugin's options for the driver (checked here: a bad value stops the agent)."""
    out: dict[str, str] = {}
    for key in ("default_pid_mode", "default_ipc_mode"):
        if key in c:
            if c[key] not in ("private", "host"):
                raise ConfigError(f'plugin.exec.config.{key}: must be "private" or "host", not {c[key]!r}')
            out[key] = c[key]
    if "allow_caps" in c:
        from nomadd.drivers.isolation import cap_names

        try:
            out["allow_caps"] = ",".join(cap_names(list(c["allow_caps"]), "allow_caps"))
        except ValueError as err:
            raise ConfigError(f"plugin.exec.config.{err}") from None
    return out


def _check_discovery(server: ServerConfig, client: ClientConfig, resolvers: tuple[str, ...]) -> None:
    """Malformed join/server entries are a config error at start, not a failure later."""
    from nomadd.discovery.entry import parse_entries, parse_resolver_address

    j = server.server_join
    parse_entries(j.start_join, default_port=4648, key="server.server_join.start_join")
    parse_entries(j.retry_join, default_port=4648, key="server.server_join.retry_join")
    parse_entries(client.servers, default_port=4646, key="client.servers")
    parse_entries(client.server_join.retry_join, default_port=4646, key="client.server_join.retry_join")
    for r in resolvers:
        try:
            parse_resolver_address(r)
        except ConfigError as err:
            raise ConfigError(f"discovery.dns_resolvers: {err}") from None
    if j.retry_max < 0 or client.server_join.retry_max < 0:
        raise ConfigError("server_join.retry_max: must not be negative (0 retries forever)")


def _check_ip(key: str, value: str) -> None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ConfigError(f'{key}: "{value}" is not an IP address') from None


def _advertise(kind: str, explicit: str | None, bind: str, port: int, dev: bool) -> str:
    """Nomad's normalizeAdvertise: explicit value, else the bind address, else a private IP."""
    if explicit:
        host, sep, p = explicit.rpartition(":")
        if sep and p.isdigit() and (not host.count(":") or host.endswith("]")):
            return explicit
        return _join_host_port(explicit.strip("[]"), port)
    ip = ipaddress.ip_address(bind)
    if ip.is_loopback:
        if dev:
            return _join_host_port(bind, port)
        raise ConfigError(
            f"advertise.{kind}: Defaulting advertise to localhost is unsafe, please set advertise manually"
        )
    if not ip.is_unspecified:
        return _join_host_port(bind, port)
    private = _first_private_ip()
    if private is None:
        raise ConfigError(f"advertise.{kind}: no private IP address found to advertise; set advertise.{kind}")
    return _join_host_port(private, port)


def _join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _first_private_ip() -> str | None:
    """The first private IPv4 address of this host (go-sockaddr's GetPrivateIP)."""
    import psutil

    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family != socket.AF_INET:
                continue
            ip = ipaddress.ip_address(a.address)
            if ip.is_private and not ip.is_loopback and not ip.is_link_local:
                return a.address
    return None
