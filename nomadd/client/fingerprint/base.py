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

import asyncio
import importlib.metadata
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from nomadd.drivers import DRIVERS
from nomadd.drivers.base import HEALTH_UNDETECTED, DriverConfig, DriverInfo

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
        return "0.1.0"


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
    cpu_total_compute: int = 0
    memory_total_mb: int = 0
    disk_total_mb: int = 0
    raw_exec_enabled: bool = False
    exec_enabled: bool = True
    drivers: tuple[str, ...] = DEFAULT_DRIVERS
    version: str = field(default_factory=_default_version)
    revision: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeResources:
    """Node resources as the scheduler sees them: CPU MHz, cores, memory MB, disk MB."""

    cpu_mhz: int = 0
    cores: int = 0
    memory_mb: int = 0
    disk_mb: int = 0


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
    """The whole node: attributes, resources available to tasks (total minus reserved), the
    reservation, and per-driver info. ``==`` ignores volatile values (see module doc)."""

    attributes: Mapping[str, str]
    resources: NodeResources
    reserved: NodeResources
    drivers: Mapping[str, DriverInfo]
    total: NodeResources = field(default_factory=NodeResources)

    def stable_key(self) -> tuple[object, ...]:
        attrs = tuple(sorted((k, v) for k, v in self.attributes.items() if k not in VOLATILE_ATTRIBUTES))
        drivers = tuple(sorted(self.drivers.items()))
        return (attrs, self.resources, self.reserved, self.total, tuple((k, v) for k, v in drivers))

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


def _load_builtin() -> None:
    # Imported here, not at module top, because those modules import this one for register().
    from nomadd.client.fingerprint import (  # noqa: F401
        cpu,
        host,
        memory,
        network,
        nomad,
        storage,
    )


async def _run_one(fp: Fingerprinter, req: FingerprintRequest) -> FingerprintResponse:
    try:
        return await fp.fingerprint(req)
    except asyncio.CancelledError:
        raise
    except Exception:
        logger.exception("fingerprinter failed name=%s", fp.name)
        return FingerprintResponse(detected=False)


def _driver_info(name: str, cfg: FingerprintConfig) -> DriverInfo:
    cls = DRIVERS.get(name)
    if cls is None:
        logger.warning("unknown driver in fingerprint config driver=%s", name)
        return DriverInfo(
            detected=False,
            healthy=False,
            health_description=HEALTH_UNDETECTED,
            update_time=time.time(),
        )
    enabled = {"raw_exec": cfg.raw_exec_enabled, "exec": cfg.exec_enabled}.get(name)
    try:
        return cls(DriverConfig(enabled=enabled)).fingerprint()
    except Exception as err:
        logger.exception("driver fingerprint failed driver=%s", name)
        return DriverInfo(
            detected=False,
            healthy=False,
            health_description=f"fingerprint failed: {err}",
            update_time=time.time(),
        )


async def fingerprint_drivers(cfg: FingerprintConfig) -> dict[str, DriverInfo]:
    """Every configured driver's :class:`DriverInfo` (blocking probes run in threads)."""
    infos = await asyncio.gather(*(asyncio.to_thread(_driver_info, name, cfg) for name in cfg.drivers))
    return dict(zip(cfg.drivers, infos, strict=True))


def _assemble(
    cfg: FingerprintConfig,
    responses: Mapping[str, FingerprintResponse],
    drivers: Mapping[str, DriverInfo],
) -> NodeFingerprint:
    attributes: dict[str, str] = {}
    cpu_mhz = cores = memory_mb = disk_mb = 0
    for name in sorted(responses):
        resp = responses[name]
        attributes.update(resp.attributes)
        cpu_mhz = resp.cpu_mhz if resp.cpu_mhz is not None else cpu_mhz
        cores = resp.cores if resp.cores is not None else cores
        memory_mb = resp.memory_mb if resp.memory_mb is not None else memory_mb
        disk_mb = resp.disk_mb if resp.disk_mb is not None else disk_mb
    for info in drivers.values():
        if info.detected:
            attributes.update(info.attributes)
    total = NodeResources(cpu_mhz=cpu_mhz, cores=cores, memory_mb=memory_mb, disk_mb=disk_mb)
    reserved = NodeResources(
        cpu_mhz=cfg.reserved_cpu_mhz,
        memory_mb=cfg.reserved_memory_mb,
        disk_mb=cfg.reserved_disk_mb,
    )
    usable_cpu = max(0, cpu_mhz - cfg.reserved_cpu_mhz)
    attributes["cpu.usablecompute"] = str(usable_cpu)
    resources = NodeResources(
        cpu_mhz=usable_cpu,
        cores=cores,
        memory_mb=max(0, memory_mb - cfg.reserved_memory_mb),
        disk_mb=max(0, disk_mb - cfg.reserved_disk_mb),
    )
    return NodeFingerprint(
        attributes=attributes,
        resources=resources,
        reserved=reserved,
        drivers=dict(drivers),
        total=total,
    )


async def _run(
    cfg: FingerprintConfig, names: list[str]
) -> tuple[dict[str, FingerprintResponse], dict[str, DriverInfo]]:
    req = FingerprintRequest(config=cfg)
    fps = [REGISTRY[n]() for n in names]
    drivers, results = await asyncio.gather(
        fingerprint_drivers(cfg), asyncio.gather(*(_run_one(fp, req) for fp in fps))
    )
    return dict(zip(names, results, strict=True)), drivers


async def fingerprint_node(cfg: FingerprintConfig) -> NodeFingerprint:
    """Run every fingerprinter and driver fingerprint once; never raises for host data."""
    _load_builtin()
    start = time.perf_counter()
    responses, drivers = await _run(cfg, sorted(REGISTRY))
    node = _assemble(cfg, responses, drivers)
    logger.debug(
        "node fingerprinted elapsed_ms=%.1f attributes=%d",
        1000 * (time.perf_counter() - start),
        len(node.attributes),
    )
    return node


async def refingerprint_node(cfg: FingerprintConfig, previous: NodeFingerprint) -> NodeFingerprint:
    """Re-run the periodic fingerprinters and the drivers; keep everything else from
    ``previous``. Compare the result with ``previous`` to decide whether to update."""
    _load_builtin()
    periodic = sorted(n for n, cls in REGISTRY.items() if cls.periodic is not None)
    responses, drivers = await _run(cfg, periodic)
    attributes = {k: v for k, v in previous.attributes.items() if not k.startswith("driver.")}
    for resp in responses.values():
        attributes.update(resp.attributes)
    base = FingerprintResponse(
        attributes=attributes,
        cpu_mhz=previous.total.cpu_mhz,
        cores=previous.total.cores,
        memory_mb=previous.total.memory_mb,
        disk_mb=previous.total.disk_mb,
    )
    # "" sorts first, so periodic fingerprinters' resources override the previous ones.
    return _assemble(cfg, {"": base, **responses}, drivers)


def min_period_s() -> float | None:
    """The shortest ``periodic`` interval of any fingerprinter (None if none is periodic)."""
    _load_builtin()
    periods = [cls.periodic for cls in REGISTRY.values() if cls.periodic is not None]
    return min(periods) if periods else None


def read_text(path: str) -> str | None:
    """The contents of a small host file, or None when it cannot be read."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def uname() -> os.uname_result:
    return os.uname()
