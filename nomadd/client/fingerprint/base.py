"""Fingerprinting: what this host is, in Nomad's attribute names, and what it offers.

Each fingerprinter (one module each, registered in :data:`REGISTRY`) answers a
:class:`FingerprintRequest` with a :class:`FingerprintResponse`: attributes (``cpu.arch`` ...) and,
for some, resources. :func:`fingerprint_node` runs them all concurrently plus every configured
driver's ``fingerprint()`` and folds the answers into a :class:`NodeFingerprint`.

Periodic re-fingerprinting (:func:`refingerprint_node`) re-runs only the fingerprinters with a
``periodic`` interval and the drivers, keeps the rest from the previous result, and the caller
sends an update to the servers only when ``new != previous``: :class:`NodeFingerprint` equality
ignores volatile values (:data:`VOLATILE_ATTRIBUTES`, driver update times).

A fingerprinter never raises for missing host data: it degrades to the fallback its module
documents and logs a warning. :func:`fingerprint_node` additionally contains any unexpected
exception of one fingerprinter (logged, that fingerprinter's attributes are absent).
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from nomadd import __version__
from nomadd.structs.node import (
    DEFAULT_MAX_DYNAMIC_PORT,
    DEFAULT_MIN_DYNAMIC_PORT,
    DriverInfo,
    NodeReservedResources,
    NodeResources,
)

logger = logging.getLogger(__name__)

# Attributes whose value changes without the node changing; equality ignores them.
VOLATILE_ATTRIBUTES = frozenset({"unique.storage.bytesfree"})
# Drivers fingerprinted unless the config names others (mock is opt-in, for tests and -dev).
DEFAULT_DRIVERS = ("raw_exec", "exec")
DEFAULT_ALLOC_DIR = "/var/lib/nomad/alloc"
BYTES_PER_MB = 1024 * 1024


def _default_version() -> str:
    try:
        return importlib.metadata.version("nomadd")
    except importlib.metadata.PackageNotFoundError:
        return __version__


@dataclass(frozen=True, slots=True, kw_only=True)
class FingerprintConfig:
    """The client settings fingerprinting reads (from ``client {}`` of the agent config).

    Zero for an override means "not set" (Nomad's convention for ``cpu_total_compute``,
    ``memory_total_mb``, ``disk_total_mb``).
    """

    network_interface: str = ""
    alloc_dir: str = DEFAULT_ALLOC_DIR
    reserved_cpu_mhz: int = 0
    reserved_memory_mb: int = 0
    reserved_disk_mb: int = 0
    reserved_ports: str = ""
    cpu_total_compute: int = 0
    memory_total_mb: int = 0
    disk_total_mb: int = 0
    min_dynamic_port: int = DEFAULT_MIN_DYNAMIC_PORT
    max_dynamic_port: int = DEFAULT_MAX_DYNAMIC_PORT
    raw_exec_enabled: bool = False
    exec_enabled: bool = True
    drivers: tuple[str, ...] = DEFAULT_DRIVERS
    #: each driver plugin's config table (``plugin "<name>" { config {} }``)
    driver_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    version: str = field(default_factory=_default_version)
    revision: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class FingerprintRequest:
    config: FingerprintConfig


@dataclass(frozen=True, slots=True, kw_only=True)
class FingerprintResponse:
    """One fingerprinter's answer. ``None`` resource fields mean "not mine to say"."""

    attributes: Mapping[str, str] = field(default_factory=dict)
    cpu_mhz: int | None = None
    cores: int | None = None
    memory_mb: int | None = None
    disk_mb: int | None = None
    detected: bool = True


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class NodeFingerprint:
    """The whole node: attributes, the host's total resources, the reservation (``client.reserved``;
    the scheduler subtracts it) and per-driver info. ``==`` ignores volatile values (see module
    doc)."""

    attributes: Mapping[str, str]
    total: NodeResources = field(default_factory=NodeResources)
    reserved: NodeReservedResources = field(default_factory=NodeReservedResources)
    drivers: Mapping[str, DriverInfo] = field(default_factory=dict)

    def stable_key(self) -> tuple[object, ...]:
        attrs = tuple(sorted((k, v) for k, v in self.attributes.items() if k not in VOLATILE_ATTRIBUTES))
        drivers = tuple(sorted(self.drivers.items()))
        return (attrs, self.total, self.reserved, tuple((k, v) for k, v in drivers))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NodeFingerprint):
            return NotImplemented
        return self.stable_key() == other.stable_key()

    __hash__ = None  # type: ignore[assignment]


class Fingerprinter(Protocol):
    """One source of node facts. ``periodic`` is the re-run interval in seconds, or None for
    fingerprinters whose facts do not change while the agent runs."""

    name: ClassVar[str]
    periodic: ClassVar[float | None]

    async def fingerprint(self, req: FingerprintRequest) -> FingerprintResponse: ...


REGISTRY: dict[str, type[Fingerprinter]] = {}


def register(cls: type[Fingerprinter]) -> type[Fingerprinter]:
    """Class decorator adding a fingerprinter to :data:`REGISTRY` under its ``name``."""
    REGISTRY[cls.name] = cls
    return cls


def read_text(path: str) -> str | None:
    """The contents of a small host file, or None when it cannot be read."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def uname() -> os.uname_result:
    return os.uname()
