"""Memory fingerprint: ``memory.totalbytes`` and the node's memory MB.

Source: ``psutil.virtual_memory().total`` (host RAM, not a cgroup limit), then ``MemTotal`` of
``/proc/meminfo``. The ``memory_total_mb`` override replaces both. When nothing is known the
node reports 0 MB (no task will be placed) and a warning is logged.
"""

from __future__ import annotations

import asyncio
import logging
from typing import ClassVar

from nomadd.client.fingerprint.base import (
    BYTES_PER_MB,
    FingerprintRequest,
    FingerprintResponse,
    read_text,
    register,
)

logger = logging.getLogger(__name__)

MEMINFO_PATH = "/proc/meminfo"


def meminfo_total_bytes(text: str | None) -> int:
    for line in (text or "").splitlines():
        if line.startswith("MemTotal:"):
            parts = line.split()
            try:
                return int(parts[1]) * 1024
            except (IndexError, ValueError):
                return 0
    return 0


def psutil_total_bytes() -> int:
    try:
        import psutil

        return int(psutil.virtual_memory().total or 0)
    except Exception:
        logger.debug("psutil virtual_memory failed", exc_info=True)
        return 0


def fingerprint_memory(memory_total_mb: int) -> FingerprintResponse:
    if memory_total_mb > 0:
        total = memory_total_mb * BYTES_PER_MB
    else:
        total = psutil_total_bytes() or meminfo_total_bytes(read_text(MEMINFO_PATH))
    if total <= 0:
        logger.warning("memory size unknown; set client.memory_total_mb")
        return FingerprintResponse(attributes={}, memory_mb=0)
    return FingerprintResponse(attributes={"memory.totalbytes": str(total)}, memory_mb=total // BYTES_PER_MB)


@register
class MemoryFingerprint:
    name: ClassVar[str] = "memory"
    periodic: ClassVar[float | None] = None

    async def fingerprint(self, req: FingerprintRequest) -> FingerprintResponse:
        return await asyncio.to_thread(fingerprint_memory, req.config.memory_total_mb)
