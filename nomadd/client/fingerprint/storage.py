"""Storage fingerprint of the volume holding the alloc dir: ``unique.storage.volume`` (the
mounted device, from ``/proc/self/mounts``), ``unique.storage.bytestotal``,
``unique.storage.bytesfree`` (volatile: ignored by NodeFingerprint equality) and the node's disk
MB = free MB at start-up, as Nomad computes it, or the ``disk_total_mb`` override.

The alloc dir may not exist yet; its nearest existing parent is measured. When ``statvfs`` fails
the node reports 0 MB disk with a warning.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import ClassVar

from nomadd.client.fingerprint.base import (
    BYTES_PER_MB,
    FingerprintRequest,
    FingerprintResponse,
    read_text,
    register,
)

logger = logging.getLogger(__name__)

MOUNTS_PATH = "/proc/self/mounts"


def existing_parent(path: str) -> str:
    path = os.path.abspath(path)
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def mount_device(path: str, mounts: str | None) -> str:
    """The device (first column) of the longest mount point containing ``path``."""
    best, device = "", ""
    real = os.path.realpath(path)
    for line in (mounts or "").splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        point = parts[1].replace("\\040", " ")
        inside = real == point or real.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, device = point, parts[0]
    return device


def fingerprint_storage(alloc_dir: str, disk_total_mb: int) -> FingerprintResponse:
    path = existing_parent(alloc_dir)
    attrs: dict[str, str] = {}
    device = mount_device(path, read_text(MOUNTS_PATH))
    if device:
        attrs["unique.storage.volume"] = device
    try:
        st = os.statvfs(path)
    except OSError as err:
        logger.warning("cannot stat alloc dir volume path=%s err=%s", path, err)
        return FingerprintResponse(attributes=attrs, disk_mb=max(0, disk_total_mb))
    total = st.f_blocks * st.f_frsize
    free = st.f_bavail * st.f_frsize
    attrs["unique.storage.bytestotal"] = str(total)
    attrs["unique.storage.bytesfree"] = str(free)
    disk_mb = disk_total_mb if disk_total_mb > 0 else free // BYTES_PER_MB
    return FingerprintResponse(attributes=attrs, disk_mb=disk_mb)


@register
class StorageFingerprint:
    name: ClassVar[str] = "storage"
    periodic: ClassVar[float | None] = None

    async def fingerprint(self, req: FingerprintRequest) -> FingerprintResponse:
        cfg = req.config
        return await asyncio.to_thread(fingerprint_storage, cfg.alloc_dir, cfg.disk_total_mb)
