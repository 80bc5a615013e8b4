"""What the client reads from the agent's configuration, and nothing else.

The agent's loader (``nomadd.agent.config.build_config``) builds it, validated, from files and
flags; the client never sees the agent's config (docs/architecture.md §Layering).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nomadd.structs.config import Advertise, DiscoveryConfig, ServerJoin, TLSConfig
from nomadd.structs.node import DEFAULT_MAX_DYNAMIC_PORT, DEFAULT_MIN_DYNAMIC_PORT
from nomadd.structs.volumes import ClientHostVolumeConfig

__all__ = ["ClientConfig", "DrainOnShutdown", "Reserved"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Reserved:
    cpu: int = 0
    memory: int = 0
    disk: int = 0
    reserved_ports: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class DrainOnShutdown:
    """``client.drain_on_shutdown``: drain this node before a graceful stop (Nomad's defaults)."""

    deadline: float = 3600.0  # seconds; 0: no deadline
    force: bool = False
    ignore_system_jobs: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientConfig:
    enabled: bool = False
    # The agent-wide settings the client uses.
    region: str = "global"
    datacenter: str = "dc1"
    name: str = ""
    dev_mode: bool = False
    advertise: Advertise = Advertise(http="", raft="", serf="")
    discovery: DiscoveryConfig = DiscoveryConfig()
    tls: TLSConfig = TLSConfig()
    # This agent's own server's HTTP address when it runs one too: the server list falls back
    # to it when no other server is known. Empty on a client-only agent.
    local_server: str = ""
    # The ``client`` block.
    servers: tuple[str, ...] = ()
    node_class: str = ""
    node_pool: str = "default"
    meta: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, str] = field(default_factory=dict)
    host_volumes: Mapping[str, ClientHostVolumeConfig] = field(default_factory=dict)
    network_interface: str = ""
    reserved: Reserved = Reserved()
    server_join: ServerJoin = ServerJoin()
    state_dir: str = ""
    alloc_dir: str = ""
    max_kill_timeout: float = 30.0
    raw_exec_enabled: bool = False
    exec_enabled: bool = True
    # Each driver plugin's ``plugin "<name>" { config { ... } }`` table (docker: endpoint, volumes...).
    plugin_config: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    exec_options: Mapping[str, str] = field(default_factory=dict)  # plugin "exec" config
    cpu_total_compute: int = 0
    min_dynamic_port: int = DEFAULT_MIN_DYNAMIC_PORT
    max_dynamic_port: int = DEFAULT_MAX_DYNAMIC_PORT
    memory_total_mb: int = 0
    disk_total_mb: int = 0
    drain_on_shutdown: DrainOnShutdown | None = None
