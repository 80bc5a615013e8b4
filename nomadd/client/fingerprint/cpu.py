"""CPU fingerprint: ``cpu.arch``, ``cpu.modelname``, ``cpu.numcores``, ``cpu.frequency`` (MHz),
``cpu.totalcompute`` (MHz = cores x frequency) and the node's CPU resources.

Where the numbers come from, in order:

* cores: ``os.sched_getaffinity(0)`` (honours cpusets), then ``psutil.cpu_count()``, then 1;
* frequency: ``psutil.cpu_freq()`` (current, else max) when it is neither None nor 0, then the
  ``cpu MHz`` lines of ``/proc/cpuinfo``, then ``cpu_total_compute / cores`` when that override is
  set, else :data:`FALLBACK_CPU_MHZ` with a warning (arm64 cloud VMs and some containers expose
  no frequency at all, psutil#1006);
* total compute: the ``cpu_total_compute`` override when set, else cores x frequency.
"""

from __future__ import annotations

import asyncio
import logging
import os
import platform
from typing import ClassVar

from nomadd.client.fingerprint.base import (
    FingerprintRequest,
    FingerprintResponse,
    read_text,
    register,
)

logger = logging.getLogger(__name__)

# Used when no source gives a CPU frequency and cpu_total_compute is unset: a conservative
# figure so that the node can still run small tasks; operators should set cpu_total_compute.
FALLBACK_CPU_MHZ = 1000
CPUINFO_PATH = "/proc/cpuinfo"

# Go's GOARCH names, which Nomad reports as cpu.arch.
_GOARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "i386": "386",
    "i686": "386",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "armv6l": "arm",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}


def go_arch(machine: str) -> str:
    return _GOARCH.get(machine.lower(), machine.lower())


def _cpuinfo_fields(text: str, key: str) -> list[str]:
    out = []
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip().lower() == key:
            out.append(value.strip())
    return out


def count_cores() -> int:
    try:
        n = len(os.sched_getaffinity(0))
        if n > 0:
            return n
    except (AttributeError, OSError):
        pass
    try:
        import psutil

        n = psutil.cpu_count() or 0
        if n > 0:
            return n
    except Exception:  # psutil raises various errors on odd hosts; fall through
        logger.debug("psutil cpu_count failed", exc_info=True)
    return 1


def psutil_mhz() -> float:
    """psutil's CPU frequency in MHz, 0.0 when it has none (None or zeros)."""
    try:
        import psutil

        freq = psutil.cpu_freq()
    except Exception:
        logger.debug("psutil cpu_freq failed", exc_info=True)
        return 0.0
    if freq is None:
        return 0.0
    return float(freq.current or 0.0) or float(freq.max or 0.0)


def cpuinfo_mhz(cpuinfo: str | None) -> float:
    if not cpuinfo:
        return 0.0
    values = []
    for v in _cpuinfo_fields(cpuinfo, "cpu mhz"):
        try:
            values.append(float(v))
        except ValueError:
            continue
    return max(values) if values else 0.0


def model_name(cpuinfo: str | None) -> str:
    if not cpuinfo:
        return ""
    for key in ("model name", "cpu model", "processor", "hardware"):
        for v in _cpuinfo_fields(cpuinfo, key):
            if v and not v.isdigit():
                return v
    return ""


def fingerprint_cpu(cpu_total_compute: int) -> FingerprintResponse:
    cores = count_cores()
    cpuinfo = read_text(CPUINFO_PATH)
    mhz = psutil_mhz() or cpuinfo_mhz(cpuinfo)
    if mhz <= 0:
        if cpu_total_compute > 0:
            mhz = cpu_total_compute / cores
            logger.info("cpu frequency unknown, derived from cpu_total_compute mhz=%.0f", mhz)
        else:
            mhz = FALLBACK_CPU_MHZ
            logger.warning(
                "cpu frequency unknown, using fallback; set client.cpu_total_compute mhz=%d",
                FALLBACK_CPU_MHZ,
            )
    mhz_int = round(mhz)
    total = cpu_total_compute if cpu_total_compute > 0 else mhz_int * cores
    attrs = {
        "cpu.arch": go_arch(platform.machine()),
        "cpu.numcores": str(cores),
        "cpu.frequency": str(mhz_int),
        "cpu.totalcompute": str(total),
    }
    name = model_name(cpuinfo)
    if name:
        attrs["cpu.modelname"] = name
    return FingerprintResponse(attributes=attrs, cpu_mhz=total, cores=cores)


@register
class CPUFingerprint:
    name: ClassVar[str] = "cpu"
    periodic: ClassVar[float | None] = None

    async def fingerprint(self, req: FingerprintRequest) -> FingerprintResponse:
        return await asyncio.to_thread(fingerprint_cpu, req.config.cpu_total_compute)
