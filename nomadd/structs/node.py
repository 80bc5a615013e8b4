"""Client nodes: identity, fingerprinted resources, drivers, status and events (Nomad's Node)."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import field
from enum import StrEnum
from typing import ClassVar

from nomadd.structs.codec import api
from nomadd.structs.volumes import ClientHostVolumeConfig

__all__ = [
    "DEFAULT_MAX_DYNAMIC_PORT",
    "DEFAULT_MIN_DYNAMIC_PORT",
    "MAX_NODE_EVENTS",
    "DrainMetadata",
    "DrainStatus",
    "DrainStrategy",
    "DriverInfo",
    "Node",
    "NodeCpuResources",
    "NodeDiskResources",
    "NodeEligibility",
    "NodeEvent",
    "NodeListStub",
    "NodeMemoryResources",
    "NodeReservedCpuResources",
    "NodeReservedNetworkResources",
    "NodeReservedResources",
    "NodeResources",
    "NodeStatus",
    "computed_class",
]

MAX_NODE_EVENTS = 10  # Nomad keeps the last 10 events per node (structs.MaxRetainedNodeEvents)
DEFAULT_MIN_DYNAMIC_PORT = 20000  # Nomad's default dynamic port range
DEFAULT_MAX_DYNAMIC_PORT = 32000


class NodeStatus(StrEnum):
    INITIALIZING = "initializing"
    READY = "ready"
    DOWN = "down"
    DISCONNECTED = "disconnected"


class NodeEligibility(StrEnum):
    ELIGIBLE = "eligible"
    INELIGIBLE = "ineligible"


class DrainStatus(StrEnum):
    DRAINING = "draining"
    COMPLETE = "complete"
    CANCELED = "canceled"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class NodeCpuResources:
    cpu_shares: int = 0  # total MHz the node offers
    total_cpu_cores: int = 0
    reservable_cpu_cores: tuple[int, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class NodeMemoryResources:
    memory_mb: int = 0


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class NodeDiskResources:
    disk_mb: int = 0


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class NodeResources:
    # Nomad's api.NodeResources keys nomadd has no field for, sent at their zero value (codec.to_api)
    NOMAD_ONLY: ClassVar[Mapping[str, object]] = {"Networks": None, "Devices": None}

    cpu: NodeCpuResources = field(default_factory=NodeCpuResources, metadata=api("Cpu"))
    memory: NodeMemoryResources = field(default_factory=NodeMemoryResources)
    disk: NodeDiskResources = field(default_factory=NodeDiskResources)
    min_dynamic_port: int = DEFAULT_MIN_DYNAMIC_PORT
    max_dynamic_port: int = DEFAULT_MAX_DYNAMIC_PORT


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class NodeReservedCpuResources:
    cpu_shares: int = 0
    reserved_cpu_cores: tuple[int, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class NodeReservedNetworkResources:
    reserved_host_ports: str = ""  # "22,80,8000-8100": never handed to an allocation


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class NodeReservedResources:
    """What the client keeps for itself (``client.reserved``); not schedulable."""

    cpu: NodeReservedCpuResources = field(default_factory=NodeReservedCpuResources, metadata=api("Cpu"))
    memory: NodeMemoryResources = field(default_factory=NodeMemoryResources)
    disk: NodeDiskResources = field(default_factory=NodeDiskResources)
    networks: NodeReservedNetworkResources = field(default_factory=NodeReservedNetworkResources)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DrainStrategy:
    """An active drain. ``deadline`` is a duration in ns (-1: force now, 0: no deadline)."""

    deadline: int = 0
    ignore_system_jobs: bool = False
    force_deadline: str = ""  # RFC 3339; when allocations are stopped regardless
    started_at: str = ""  # RFC 3339


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DrainMetadata:
    """The last drain of a node (``LastDrain``)."""

    started_at: str = ""
    updated_at: str = ""
    status: DrainStatus = DrainStatus.DRAINING
    accessor_id: str = field(default="", metadata=api("AccessorID"))
    meta: Mapping[str, str] = field(default_factory=dict)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class NodeEvent:
    message: str = ""
    subsystem: str = ""  # "Cluster", "Drain", "Driver", ...
    details: Mapping[str, str] = field(default_factory=dict)
    timestamp: str = ""  # RFC 3339
    create_index: int = 0


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DriverInfo:
    """What a driver's fingerprint says about it on a node (Nomad's ``DriverInfo``).

    ``update_time`` is left out of equality, as Nomad's ``HealthCheckEquals`` leaves it out: a
    re-fingerprint of an unchanged driver is not a change.
    """

    attributes: Mapping[str, str] = field(default_factory=dict)
    detected: bool = False
    healthy: bool = False
    health_description: str = ""
    update_time: str = field(default="", compare=False)  # RFC 3339


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class NodeListStub:
    """One row of ``GET /v1/nodes``."""

    id: str = ""
    name: str = ""
    address: str = ""
    datacenter: str = ""
    node_pool: str = ""
    node_class: str = ""
    version: str = ""
    drain: bool = False
    scheduling_eligibility: NodeEligibility = NodeEligibility.ELIGIBLE
    status: NodeStatus = NodeStatus.INITIALIZING
    status_description: str = ""
    drivers: Mapping[str, DriverInfo] = field(default_factory=dict)
    host_volumes: Mapping[str, ClientHostVolumeConfig] = field(default_factory=dict)
    last_drain: DrainMetadata | None = None
    attributes: Mapping[str, str] | None = None  # only with ?os=true
    node_resources: NodeResources | None = None  # only with ?resources=true
    reserved_resources: NodeReservedResources | None = None
    create_index: int = 0
    modify_index: int = 0


# Attribute prefixes that make a node unique and so are left out of its computed class.
_UNIQUE_PREFIX = "unique."


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Node:
    """A client node as the servers store it. ``secret_id`` never leaves the servers' API."""

    # Nomad's api.Node keys nomadd has no field for, sent at their zero value (codec.to_api)
    NOMAD_ONLY: ClassVar[Mapping[str, object]] = {
        "CgroupParent": "",
        "GCVolumesOnNodeGC": False,
        "HostNetworks": None,
        "CSIControllerPlugins": None,
        "CSINodePlugins": None,
        "NodeMaxAllocs": 0,
    }

    id: str = ""
    secret_id: str = ""
    datacenter: str = "dc1"
    name: str = ""
    http_addr: str = ""
    tls_enabled: bool = False
    attributes: Mapping[str, str] = field(default_factory=dict)
    node_resources: NodeResources = field(default_factory=NodeResources)
    reserved_resources: NodeReservedResources = field(default_factory=NodeReservedResources)
    links: Mapping[str, str] = field(default_factory=dict)
    meta: Mapping[str, str] = field(default_factory=dict)
    node_class: str = ""
    node_pool: str = "default"
    computed_class: str = ""
    drain_strategy: DrainStrategy | None = None
    scheduling_eligibility: NodeEligibility = NodeEligibility.ELIGIBLE
    status: NodeStatus = NodeStatus.INITIALIZING
    status_description: str = ""
    status_updated_at: int = 0  # Unix seconds, as Nomad
    events: tuple[NodeEvent, ...] = ()
    drivers: Mapping[str, DriverInfo] = field(default_factory=dict)
    host_volumes: Mapping[str, ClientHostVolumeConfig] = field(default_factory=dict)
    last_drain: DrainMetadata | None = None
    create_index: int = 0
    modify_index: int = 0

    @property
    def drain(self) -> bool:
        return self.drain_strategy is not None

    def ready(self) -> bool:
        """Ready, eligible and not draining: the scheduler may place work here."""
        return (
            self.status == NodeStatus.READY
            and self.drain_strategy is None
            and self.scheduling_eligibility == NodeEligibility.ELIGIBLE
        )

    def terminal(self) -> bool:
        return self.status == NodeStatus.DOWN

    def sanitize(self) -> Node:
        """A copy without the secret, for the API."""
        if not self.secret_id:
            return self
        return dataclasses.replace(self, secret_id="")

    def with_event(self, event: NodeEvent) -> Node:
        """A copy with ``event`` appended, keeping the last :data:`MAX_NODE_EVENTS`."""
        events = (*self.events, event)[-MAX_NODE_EVENTS:]
        return dataclasses.replace(self, events=events)

    def with_computed_class(self) -> Node:
        return dataclasses.replace(self, computed_class=computed_class(self))

    def comparable_resources(self) -> tuple[int, int, int]:
        """Schedulable (cpu MHz, memory MB, disk MB): fingerprinted minus reserved."""
        res, rsv = self.node_resources, self.reserved_resources
        return (
            res.cpu.cpu_shares - rsv.cpu.cpu_shares,
            res.memory.memory_mb - rsv.memory.memory_mb,
            res.disk.disk_mb - rsv.disk.disk_mb,
        )

    def stub(self, *, os: bool = False, resources: bool = False) -> NodeListStub:
        """The ``GET /v1/nodes`` row (``?os=true`` adds ``os.name``, ``?resources=true`` both)."""
        attrs = self.attributes
        return NodeListStub(
            id=self.id,
            name=self.name,
            address=attrs.get("unique.network.ip-address", ""),
            datacenter=self.datacenter,
            node_pool=self.node_pool,
            node_class=self.node_class,
            version=attrs.get("nomad.version", ""),
            drain=self.drain_strategy is not None,
            scheduling_eligibility=self.scheduling_eligibility,
            status=self.status,
            status_description=self.status_description,
            drivers=self.drivers,
            host_volumes=self.host_volumes,
            last_drain=self.last_drain,
            attributes={"os.name": attrs.get("os.name", "")} if os else None,
            node_resources=self.node_resources if resources else None,
            reserved_resources=self.reserved_resources if resources else None,
            create_index=self.create_index,
            modify_index=self.modify_index,
        )


def computed_class(node: Node) -> str:
    """Hash of what makes nodes interchangeable for feasibility (Nomad's ComputeClass).

    Covers datacenter, pool, class, non-unique attributes, meta, drivers' health and host volumes
    (names, read-only); nodes with the same value pass or fail the same constraints, so the
    scheduler checks a class once.
    """
    h = hashlib.blake2b(digest_size=8)
    for part in (node.datacenter, node.node_pool, node.node_class):
        h.update(part.encode())
        h.update(b"\0")
    for key in sorted(node.attributes):
        if not key.startswith(_UNIQUE_PREFIX):
            h.update(f"a{key}={node.attributes[key]}\0".encode())
    for key in sorted(node.meta):
        if not key.startswith(_UNIQUE_PREFIX):
            h.update(f"m{key}={node.meta[key]}\0".encode())
    for name in sorted(node.drivers):
        info = node.drivers[name]
        h.update(f"d{name}={info.detected}{info.healthy}\0".encode())
    for name in sorted(node.host_volumes):
        h.update(f"v{name}={node.host_volumes[name].read_only}\0".encode())
    return "v1:" + h.hexdigest()
