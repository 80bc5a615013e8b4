"""Small config types that both the server's and the client's configs hold.

The agent's loader (``nomadd.agent.config``) builds them from files and flags; the server and the
client only read them. They live here, below both, so that neither imports the agent
(docs/architecture.md §Layering).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Advertise", "DiscoveryConfig", "Ports", "ServerJoin"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Ports:
    http: int = 4646
    raft: int = 4647
    serf: int = 4648


@dataclass(frozen=True, slots=True, kw_only=True)
class Advertise:
    """Addresses other agents use to reach this one, each ``host:port``."""

    http: str
    raft: str
    serf: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerJoin:
    start_join: tuple[str, ...] = ()
    retry_join: tuple[str, ...] = ()
    retry_interval: float = 30.0
    retry_max: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class DiscoveryConfig:
    dns_resolvers: tuple[str, ...] = ()
