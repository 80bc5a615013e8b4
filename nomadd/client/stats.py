"""Host statistics for ``GET /v1/client/stats`` (Nomad's ``HostStats`` JSON shape), via psutil.

Blocking (reads /proc): call :func:`host_stats` through ``asyncio.to_thread``.
"""

from __future__ import annotations

import os
import time
from typing import Any

import psutil

__all__ = ["host_stats"]


def _disk(path: str) -> dict[str, Any]:
    try:
        u = psutil.disk_usage(path)
    except OSError:
        return {}
    return {
        "Device": "",
        "Mountpoint": path,
        "Size": u.total,
        "Used": u.used,
        "Available": u.free,
        "UsedPercent": u.percent,
        "InodesUsedPercent": 0.0,
    }


def host_stats(alloc_dir: str) -> dict[str, Any]:
    mem = psutil.virtual_memory()
    cpus = psutil.cpu_times_percent(interval=None, percpu=True)
    cpu = [
        {
            "CPU": f"cpu{i}",
            "User": c.user,
            "System": c.system,
            "Idle": c.idle,
            "Total": max(0.0, 100.0 - c.idle),
        }
        for i, c in enumerate(cpus)
    ]
    alloc = _disk(alloc_dir) if alloc_dir and os.path.isdir(alloc_dir) else {}
    return {
        "Memory": {"Total": mem.total, "Available": mem.available, "Used": mem.used, "Free": mem.free},
        "CPU": cpu,
        "DiskStats": [alloc] if alloc else [],
        "AllocDirStats": alloc,
        "Uptime": int(time.time() - psutil.boot_time()),
        "Timestamp": time.time_ns(),
        "CPUTicksConsumed": 0.0,
    }
