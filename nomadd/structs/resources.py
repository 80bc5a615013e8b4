"""Task resource asks (``Resources``, ``EphemeralDisk``) and what an allocation was given."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import field
from typing import ClassVar

from nomadd.structs.codec import api

__all__ = [
    "DEFAULT_CPU_MHZ",
    "DEFAULT_DISK_MB",
    "DEFAULT_MEMORY_MB",
    "MAX_CORES",
    "MAX_CPU_MHZ",
    "MAX_DISK_MB",
    "MAX_MEMORY_MB",
    "MIN_CPU_MHZ",
    "MIN_MEMORY_MB",
    "AllocatedCpuResources",
    "AllocatedMemoryResources",
    "AllocatedPortMapping",
    "AllocatedResources",
    "AllocatedSharedResources",
    "AllocatedTaskResources",
    "EphemeralDisk",
    "NetworkResource",
    "Port",
    "Resources",
]

DEFAULT_CPU_MHZ = 100  # Nomad's DefaultResources()
DEFAULT_MEMORY_MB = 300
MIN_CPU_MHZ = 1  # Nomad's MinResources()
MIN_MEMORY_MB = 10
# Sane maxima (a job asking for more is a typo or an attack): 1,000 GHz, 64 TiB of memory, 1 PiB
# of disk, 4,096 cores.
MAX_CPU_MHZ = 1_000_000
MAX_MEMORY_MB = 64 * 1024 * 1024
MAX_DISK_MB = 1024 * 1024 * 1024
MAX_CORES = 4096
DEFAULT_DISK_MB = 300  # Nomad's DefaultEphemeralDisk() SizeMB


MAX_PORT = 65535


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Port:
    """A ``port "label" {}`` of a ``network`` block: ``value`` is the static host port (a reserved
    port) or the one the scheduler assigned (a dynamic port); ``to`` the port inside the task's
    network (host mode: unused)."""

    label: str = ""
    value: int = 0
    to: int = 0
    host_network: str = "default"
    ignore_collision: bool = False  # Nomad's; refused when set (see structs/network.py)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class NetworkResource:
    """A group's or task's ``network`` block (host mode only); in an allocation, also the
    node's ``ip`` the ports are on."""

    mode: str = "host"
    device: str = ""
    cidr: str = field(default="", metadata=api("CIDR"))
    ip: str = ""
    hostname: str = ""
    mbits: int = field(default=0, metadata=api("MBits"))
    reserved_ports: tuple[Port, ...] = ()
    dynamic_ports: tuple[Port, ...] = ()
    # Nomad's bridge/CNI settings: always sent (null), refused when set (see structs/network.py)
    dns: object = field(default=None, metadata=api("DNS"))
    cni: object = field(default=None, metadata=api("CNI"))


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class AllocatedPortMapping:
    """A port an allocation holds on its node (Nomad's ``AllocatedPortMapping``)."""

    label: str = ""
    value: int = 0
    to: int = 0
    host_ip: str = ""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Resources:
    """What a task asks for. ``cpu`` is MHz; ``memory_max_mb`` 0 means no oversubscription."""

    # Nomad's api.Resources keys nomadd has no field for, sent at their zero value (codec.to_api)
    NOMAD_ONLY: ClassVar[Mapping[str, object]] = {
        "Devices": None,
        "NUMA": None,
        "SecretsMB": None,
        "IOPS": None,
    }

    cpu: int = field(default=DEFAULT_CPU_MHZ, metadata=api("CPU"))
    cores: int = 0
    memory_mb: int = DEFAULT_MEMORY_MB
    memory_max_mb: int = 0
    disk_mb: int = 0  # deprecated in Nomad; the group's EphemeralDisk counts
    networks: tuple[NetworkResource, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class EphemeralDisk:
    sticky: bool = False
    size_mb: int = DEFAULT_DISK_MB
    migrate: bool = False


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class AllocatedCpuResources:
    cpu_shares: int = 0
    reserved_cores: tuple[int, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class AllocatedMemoryResources:
    memory_mb: int = 0
    memory_max_mb: int = 0


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class AllocatedTaskResources:
    # Nomad's api.AllocatedTaskResources keys nomadd has no field for, sent at their zero value (codec.to_api)
    NOMAD_ONLY: ClassVar[Mapping[str, object]] = {"Devices": None}

    cpu: AllocatedCpuResources = field(default_factory=AllocatedCpuResources, metadata=api("Cpu"))
    memory: AllocatedMemoryResources = field(default_factory=AllocatedMemoryResources)
    networks: tuple[NetworkResource, ...] = ()

    @classmethod
    def from_ask(cls, res: Resources) -> AllocatedTaskResources:
        return cls(
            cpu=AllocatedCpuResources(cpu_shares=res.cpu),
            memory=AllocatedMemoryResources(memory_mb=res.memory_mb, memory_max_mb=res.memory_max_mb),
        )


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class AllocatedSharedResources:
    disk_mb: int = 0
    networks: tuple[NetworkResource, ...] = ()
    ports: tuple[AllocatedPortMapping, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class AllocatedResources:
    tasks: Mapping[str, AllocatedTaskResources] = field(default_factory=dict)
    shared: AllocatedSharedResources = field(default_factory=AllocatedSharedResources)

    def legacy(self) -> Resources:
        """Nomad's deprecated ``Allocation.Resources``: the sums, and every network (the group's,
        then the tasks') with its assigned ports."""
        nets = [*self.shared.networks, *(n for t in self.tasks.values() for n in t.networks)]
        return Resources(
            cpu=sum(t.cpu.cpu_shares for t in self.tasks.values()),
            memory_mb=sum(t.memory.memory_mb for t in self.tasks.values()),
            memory_max_mb=sum(t.memory.memory_max_mb for t in self.tasks.values()),
            disk_mb=self.shared.disk_mb,
            networks=tuple(nets),
        )

    def comparable(self) -> tuple[int, int, int]:
        """Total (cpu MHz, memory MB, disk MB) of the allocation, for fit checks."""
        cpu = mem = 0
        for task in self.tasks.values():
            cpu += task.cpu.cpu_shares
            mem += task.memory.memory_mb
        return cpu, mem, self.shared.disk_mb
