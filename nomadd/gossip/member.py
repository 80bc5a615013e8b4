"""Public value types of the gossip layer: config, members, events, force-leave results."""

from __future__ import annotations

import enum
import ipaddress
import math
from dataclasses import dataclass, field

from nomadd.structs.errors import ConfigError

__all__ = [
    "DEFAULT_SERF_PORT",
    "EventKind",
    "ForceLeaveResult",
    "GossipConfig",
    "Member",
    "MemberEvent",
    "MemberStatus",
]

DEFAULT_SERF_PORT = 4648  # docs/architecture.md §Ports: ports.serf
_AES_KEY_SIZES = (16, 24, 32)  # AES-128/192/256, as serf's keyring accepts


class MemberStatus(enum.StrEnum):
    """Status of a member as `nomad server members` shows it (serf's statuses plus suspect)."""

    ALIVE = "alive"
    SUSPECT = "suspect"  # missed a probe; will turn failed unless it refutes in time
    FAILED = "failed"  # suspicion timed out; kept (and retried) until reconnect_timeout
    LEAVING = "leaving"  # announced a graceful leave, not gone yet
    LEFT = "left"  # left gracefully or force-left; kept as a tombstone for tombstone_timeout


class EventKind(enum.StrEnum):
    JOIN = "join"  # a member became alive (new, or back from failed/left)
    LEAVE = "leave"  # a member left (gracefully or via force-leave)
    FAILED = "failed"  # a member was declared failed
    UPDATE = "update"  # an alive member changed its tags or address
    REAP = "reap"  # a failed/left member was removed from the member list


@dataclass(frozen=True, slots=True, kw_only=True)
class Member:
    """One member of a gossip pool. ``name`` is ``<node>.<region>``; ``tags`` are opaque."""

    name: str
    addr: str
    port: int
    tags: dict[str, str] = field(default_factory=dict)
    status: MemberStatus
    incarnation: int


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberEvent:
    """A membership change, delivered on the event loop to ``Gossip(on_event=...)``."""

    kind: EventKind
    member: Member


@dataclass(frozen=True, slots=True, kw_only=True)
class ForceLeaveResult:
    """What ``Gossip.force_leave`` did.

    ``changed`` is False when the member is unknown (``previous is None``) or not failed (an
    alive member is never forced out: ``message`` says so and nothing changes).
    """

    name: str
    previous: MemberStatus | None
    status: MemberStatus | None  # None once pruned (or when unknown)
    changed: bool
    message: str


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True, slots=True, kw_only=True)
class GossipConfig:
    """Settings of one gossip pool. Durations are seconds. Port 0 binds an ephemeral port.

    ``bind_addr`` and ``advertise_addr`` are IP literals (resolve names before): member
    addresses travel in every alive message and UDP sends must never resolve names.
    """

    name: str
    bind_addr: str = "0.0.0.0"
    bind_port: int = DEFAULT_SERF_PORT
    advertise_addr: str | None = None
    advertise_port: int | None = None
    tags: dict[str, str] = field(default_factory=dict)
    encrypt_key: bytes | None = None
    probe_interval: float = 1.0
    probe_timeout: float = 0.5
    suspicion_mult: int = 4
    indirect_checks: int = 3
    gossip_interval: float = 0.2
    gossip_nodes: int = 3
    retransmit_mult: int = 4
    push_pull_interval: float = 30.0
    reconnect_interval: float = 30.0
    reconnect_timeout: float = 72 * 3600.0
    tombstone_timeout: float = 24 * 3600.0
    leave_propagate_delay: float = 1.0
    tcp_timeout: float = 5.0  # bound on one push-pull exchange (connect + write + read)
    # Members whose ``remote_tag`` tag differs from ours (servers of another region, when it is
    # "region") are probed with memberlist's WAN timings: a slow link between regions must not
    # make them flap. Empty: every member gets the settings above.
    remote_tag: str = ""
    remote_probe_timeout: float = 3.0  # memberlist DefaultWANConfig ProbeTimeout
    remote_suspicion_mult: int = 6  # memberlist DefaultWANConfig SuspicionMult

    def is_remote(self, tags: dict[str, str]) -> bool:
        """Whether a member with ``tags`` gets the remote (WAN) timings."""
        return bool(self.remote_tag) and tags.get(self.remote_tag) != self.tags.get(self.remote_tag)

    def probe_timeout_for(self, tags: dict[str, str]) -> float:
        return self.remote_probe_timeout if self.is_remote(tags) else self.probe_timeout

    def suspicion_mult_for(self, tags: dict[str, str]) -> int:
        return self.remote_suspicion_mult if self.is_remote(tags) else self.suspicion_mult

    def __post_init__(self) -> None:
        if not self.name:
            raise ConfigError("gossip: name: must not be empty")
        if self.encrypt_key is not None and len(self.encrypt_key) not in _AES_KEY_SIZES:
            raise ConfigError(f"gossip: encrypt: key must be 16, 24 or 32 bytes, got {len(self.encrypt_key)}")
        for addr_field in ("bind_addr", "advertise_addr"):
            addr = getattr(self, addr_field)
            if addr is not None and not _is_ip(addr):
                raise ConfigError(f"gossip: {addr_field}: {addr!r} is not an IP address")
        for port_field in ("bind_port", "advertise_port"):
            port = getattr(self, port_field)
            if port is not None and not 0 <= port <= 65535:
                raise ConfigError(f"gossip: {port_field}: {port} is not a port number")
        positive = (
            "probe_interval",
            "probe_timeout",
            "gossip_interval",
            "push_pull_interval",
            "reconnect_interval",
            "reconnect_timeout",
            "tombstone_timeout",
            "tcp_timeout",
            "remote_probe_timeout",
        )
        for name in positive:
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ConfigError(f"gossip: {name}: must be a positive duration, got {value!r}")
        if self.probe_timeout > self.probe_interval:
            raise ConfigError("gossip: probe_timeout: must not exceed probe_interval")
        for name in ("suspicion_mult", "retransmit_mult", "gossip_nodes", "remote_suspicion_mult"):
            if getattr(self, name) < 1:
                raise ConfigError(f"gossip: {name}: must be at least 1")
        if self.indirect_checks < 0 or self.leave_propagate_delay < 0:
            raise ConfigError("gossip: indirect_checks/leave_propagate_delay: must not be negative")
        # Own a private copy so later changes to the caller's dict do not leak in.
        object.__setattr__(self, "tags", dict(self.tags))
