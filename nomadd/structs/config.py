"""Small config types that both the server's and the client's configs hold.

The agent's loader (``nomadd.agent.config``) builds them from files and flags; the server and the
client only read them. They live here, below both, so that neither imports the agent
(docs/architecture.md §Layering).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["TLS_VERSIONS", "ACLConfig", "Advertise", "DiscoveryConfig", "Ports", "ServerJoin", "TLSConfig"]


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


@dataclass(frozen=True, slots=True, kw_only=True)
class ACLConfig:
    """Nomad's ``acl`` block: enforcement on/off and how long compiled ACLs are cached (seconds)."""

    enabled: bool = False
    token_ttl: float = 30.0
    policy_ttl: float = 30.0
    role_ttl: float = 30.0
    # Federation: the token a non-authoritative region's leader reads the authoritative
    # region's policies, roles and global tokens with, and how often (nomadd's own setting;
    # Nomad replicates continuously with blocking queries).
    replication_token: str = field(default="", repr=False)
    replication_interval: float = 5.0


# Nomad's tls_min_version values.
TLS_VERSIONS = ("tls10", "tls11", "tls12", "tls13")


@dataclass(frozen=True, slots=True, kw_only=True)
class TLSConfig:
    """The agent's ``tls`` block (Nomad's names; docs/configuration.md §tls).

    ``http`` serves the HTTP port with TLS; ``rpc`` makes the internal RPC (on the same port)
    TLS with client certificates required, and agents call each other over https. ``region``
    is the agent's, for the ``server.<region>.nomad`` name ``verify_server_hostname`` checks.
    """

    http: bool = False
    rpc: bool = False
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    verify_server_hostname: bool = False
    verify_https_client: bool = False
    tls_min_version: str = "tls12"
    region: str = "global"

    @property
    def enabled(self) -> bool:
        return self.http or self.rpc
