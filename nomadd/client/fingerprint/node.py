"""Running the fingerprinters: :func:`fingerprint_node`, :func:`refingerprint_node` (see
:mod:`nomadd.client.fingerprint.base` for the model). Importing this module registers the
built-in fingerprinters.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping

from nomadd.client.fingerprint import cpu, host, memory, network, nomad, storage
from nomadd.client.fingerprint.base import (
    REGISTRY,
    FingerprintConfig,
    Fingerprinter,
    FingerprintRequest,
    FingerprintResponse,
    NodeFingerprint,
)
from nomadd.drivers import DRIVERS
from nomadd.drivers.base import HEALTH_UNDETECTED, DriverConfig
from nomadd.structs.node import (
    DriverInfo,
    NodeCpuResources,
    NodeDiskResources,
    NodeMemoryResources,
    NodeReservedCpuResources,
    NodeReservedNetworkResources,
    NodeReservedResources,
    NodeResources,
)
from nomadd.structs.timeutil import format_time

logger = logging.getLogger(__name__)

__all__ = ["BUILTIN", "fingerprint_drivers", "fingerprint_node", "min_period_s", "refingerprint_node"]

# The built-in fingerprinters; each module registers itself in REGISTRY when imported.
BUILTIN = (cpu, host, memory, network, nomad, storage)


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
            update_time=format_time(time.time_ns()),
        )
    enabled = {"raw_exec": cfg.raw_exec_enabled, "exec": cfg.exec_enabled}.get(name)
    try:
        return cls(DriverConfig(enabled=enabled, options=cfg.driver_options.get(name, {}))).fingerprint()
    except Exception as err:
        logger.exception("driver fingerprint failed driver=%s", name)
        return DriverInfo(
            detected=False,
            healthy=False,
            health_description=f"fingerprint failed: {err}",
            update_time=format_time(time.time_ns()),
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
    attributes["cpu.usablecompute"] = str(max(0, cpu_mhz - cfg.reserved_cpu_mhz))
    return NodeFingerprint(
        attributes=attributes,
        total=NodeResources(
            cpu=NodeCpuResources(cpu_shares=cpu_mhz, total_cpu_cores=cores),
            memory=NodeMemoryResources(memory_mb=memory_mb),
            disk=NodeDiskResources(disk_mb=disk_mb),
            min_dynamic_port=cfg.min_dynamic_port,
            max_dynamic_port=cfg.max_dynamic_port,
        ),
        reserved=NodeReservedResources(
            cpu=NodeReservedCpuResources(cpu_shares=cfg.reserved_cpu_mhz),
            memory=NodeMemoryResources(memory_mb=cfg.reserved_memory_mb),
            disk=NodeDiskResources(disk_mb=cfg.reserved_disk_mb),
            networks=NodeReservedNetworkResources(reserved_host_ports=cfg.reserved_ports),
        ),
        drivers=dict(drivers),
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
    periodic = sorted(n for n, cls in REGISTRY.items() if cls.periodic is not None)
    responses, drivers = await _run(cfg, periodic)
    attributes = {k: v for k, v in previous.attributes.items() if not k.startswith("driver.")}
    for resp in responses.values():
        attributes.update(resp.attributes)
    base = FingerprintResponse(
        attributes=attributes,
        cpu_mhz=previous.total.cpu.cpu_shares,
        cores=previous.total.cpu.total_cpu_cores,
        memory_mb=previous.total.memory.memory_mb,
        disk_mb=previous.total.disk.disk_mb,
    )
    # "" sorts first, so periodic fingerprinters' resources override the previous ones.
    return _assemble(cfg, {"": base, **responses}, drivers)


def min_period_s() -> float | None:
    """The shortest ``periodic`` interval of any fingerprinter (None if none is periodic)."""
    periods = [cls.periodic for cls in REGISTRY.values() if cls.periodic is not None]
    return min(periods) if periods else None
