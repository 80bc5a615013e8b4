"""What the server reads from the agent's configuration, and nothing else.

The agent's loader (``nomadd.agent.config.build_config``) builds it, validated, from files and
flags; the server never sees the agent's config (docs/architecture.md §Layering).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nomadd.server.events.broker import DEFAULT_EVENT_BUFFER_SIZE
from nomadd.structs.config import ACLConfig, Advertise, DiscoveryConfig, Ports, ServerJoin, TLSConfig
from nomadd.structs.limits import DEFAULT_LIMITS, Limits
from nomadd.structs.requests.autopilot import AutopilotConfig

__all__ = ["ServerConfig"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerConfig:
    enabled: bool = False
    # The agent-wide settings the server uses.
    region: str = "global"
    datacenter: str = "dc1"
    name: str = ""
    dev_mode: bool = False
    bind_addr: str = "0.0.0.0"
    ports: Ports = Ports()
    addresses: Advertise | None = None
    advertise: Advertise = Advertise(http="", raft="", serf="")
    discovery: DiscoveryConfig = DiscoveryConfig()
    tls: TLSConfig = TLSConfig()
    # The ``server`` block.
    bootstrap_expect: int = 0
    encrypt: bytes | None = field(default=None, repr=False)
    raft_secret: str = field(default="", repr=False)
    raft_multiplier: int = 1
    heartbeat_grace: float = 10.0
    min_heartbeat_ttl: float = 10.0
    max_heartbeats_per_second: float = 50.0
    failover_heartbeat_ttl: float = 300.0
    node_gc_threshold: float = 24 * 3600.0
    node_gc_interval: float = 300.0
    deployment_gc_threshold: float = 3600.0  # Nomad's: terminal deployments older than this go
    num_schedulers: int = 0
    # scheduling workers: the leader's (None: max(num_schedulers, 32); 0: it only applies plans)
    # and each follower's (0: the followers do not schedule); an eval a follower does not ack
    # within eval_nack_timeout is redelivered
    leader_schedulers: int | None = None
    follower_schedulers: int = 0
    eval_nack_timeout: float = 60.0  # Nomad's server.eval_nack_timeout
    event_buffer_size: int = DEFAULT_EVENT_BUFFER_SIZE  # batches /v1/event/stream keeps (Nomad's)
    rejoin_after_leave: bool = False
    server_join: ServerJoin = ServerJoin()
    # Federation: the region ACL policies, roles and global tokens are written in and
    # replicated from ("": this region is its own authority; Nomad's server.authoritative_region).
    authoritative_region: str = ""
    data_dir: str = ""
    limits: Limits = DEFAULT_LIMITS  # the ``server.limits`` table: bounds on what callers send
    acl: ACLConfig = ACLConfig()
    # operator features: the top-level `autopilot` block and `server.snapshot` (scheduled snapshots)
    autopilot: AutopilotConfig = field(default_factory=AutopilotConfig)
    snapshot_interval: float = 0.0  # 0: no scheduled snapshots
    snapshot_retain: int = 24
    snapshot_path: str = ""
