"""Autopilot RPCs (Nomad's ``Operator.AutopilotGetConfiguration`` & co.) and their Raft entry."""

from __future__ import annotations

from dataclasses import dataclass

from nomadd.structs.requests import Envelope, Method, QueryMeta, WriteMeta

__all__ = [
    "AUTOPILOT_GET_CONFIG",
    "AUTOPILOT_SERVER_HEALTH",
    "AUTOPILOT_SERVER_STATS",
    "AUTOPILOT_SET_CONFIG",
    "OPERATOR_TRANSFER_LEADERSHIP",
    "AutopilotConfig",
    "AutopilotConfigReply",
    "AutopilotGetConfigRequest",
    "AutopilotSetConfigEntry",
    "AutopilotSetConfigReply",
    "AutopilotSetConfigRequest",
    "OperatorHealthReply",
    "ServerHealth",
    "ServerHealthRequest",
    "ServerStatsReply",
    "ServerStatsRequest",
    "TransferLeadershipReply",
    "TransferLeadershipRequest",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class AutopilotConfig:
    """Nomad's autopilot settings, with its defaults (the ``autopilot`` agent block)."""

    cleanup_dead_servers: bool = True
    last_contact_threshold_s: float = 0.2
    max_trailing_logs: int = 250
    server_stabilization_time_s: float = 10.0
    min_quorum: int = 0
    create_index: int = 0
    modify_index: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class AutopilotGetConfigRequest(Envelope):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class AutopilotConfigReply:
    meta: QueryMeta
    config: AutopilotConfig


@dataclass(frozen=True, slots=True, kw_only=True)
class AutopilotSetConfigRequest(Envelope):
    """``cas``: only if the stored config's ModifyIndex is ``cas_index`` (0: none stored yet)."""

    config: AutopilotConfig
    cas: bool = False
    cas_index: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class AutopilotSetConfigReply:
    meta: WriteMeta
    updated: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class AutopilotSetConfigEntry:
    """``AUTOPILOT_SET_CONFIG``; the FSM sets the create/modify indexes."""

    config: AutopilotConfig
    cas: bool = False
    cas_index: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerStatsRequest(Envelope):
    """Asked by the leader of each server (``local``): its own view of Raft."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerStatsReply:
    last_index: int
    last_term: int
    last_contact_ms: int  # since this server last heard from the leader (0 on the leader)


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerHealth:
    """One server in ``/v1/operator/autopilot/health``."""

    id: str
    name: str
    address: str
    serf_status: str
    version: str
    leader: bool
    voter: bool
    healthy: bool
    last_contact_ms: int  # -1: never reached
    last_term: int
    last_index: int
    stable_since_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerHealthRequest(Envelope):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class OperatorHealthReply:
    meta: QueryMeta
    healthy: bool
    failure_tolerance: int
    leader: str
    voters: tuple[str, ...]
    servers: tuple[ServerHealth, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferLeadershipRequest(Envelope):
    """Hand leadership to ``address`` or the server ``id`` (both empty: Raft picks)."""

    address: str = ""
    id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferLeadershipReply:
    meta: WriteMeta
    leader: str  # raft address of the new leader ("" if not known yet)


AUTOPILOT_GET_CONFIG = Method(
    "Operator.AutopilotGetConfiguration", AutopilotGetConfigRequest, AutopilotConfigReply
)
AUTOPILOT_SET_CONFIG = Method(
    "Operator.AutopilotSetConfiguration", AutopilotSetConfigRequest, AutopilotSetConfigReply
)
AUTOPILOT_SERVER_HEALTH = Method("Operator.ServerHealth", ServerHealthRequest, OperatorHealthReply)
AUTOPILOT_SERVER_STATS = Method("Status.AutopilotServerStats", ServerStatsRequest, ServerStatsReply)
OPERATOR_TRANSFER_LEADERSHIP = Method(
    "Operator.TransferLeadershipToPeer", TransferLeadershipRequest, TransferLeadershipReply
)
