"""Resource usage of an allocation's tasks for ``GET /v1/client/allocation/:id/stats`` (Nomad's
``AllocResourceUsage``: per task ``ResourceUsage`` {``MemoryStats``, ``CpuStats``,
``DeviceStats``}, ``Timestamp`` and ``Pids``, and their sum), read with psutil from each task's
process tree.

Blocking (reads /proc): call :func:`alloc_usage` through ``asyncio.to_thread``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import psutil

__all__ = ["alloc_usage"]

MEASURED_MEMORY = ["RSS", "Swap"]
MEASURED_CPU = ["System Mode", "User Mode", "Percent"]


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def _usage(rss: int, swap: int, user_s: float, system_s: float, percent: float) -> dict[str, Any]:
    return {
        "MemoryStats": {
            "RSS": rss,
            "Cache": 0,
            "Swap": swap,
            "MappedFile": 0,
            "Usage": rss + swap,
            "MaxUsage": 0,
            "KernelUsage": 0,
            "KernelMaxUsage": 0,
            "Measured": MEASURED_MEMORY,
        },
        "CpuStats": {
            "SystemMode": system_s,
            "UserMode": user_s,
            "TotalTicks": 0.0,
            "ThrottledPeriods": 0,
            "ThrottledTime": 0,
            "Percent": percent,
            "Measured": MEASURED_CPU,
        },
        "DeviceStats": [],
    }


def _task_usage(pid: int, now: int) -> dict[str, Any]:
    rss = swap = 0
    user = system = percent = 0.0
    pids: dict[str, Any] = {}
    for p in _tree(pid):
        try:
            with p.oneshot():
                mem, cpu = p.memory_info(), p.cpu_times()
                pct = p.cpu_percent(interval=None)
        except psutil.Error:
            continue
        rss += mem.rss
        swap += getattr(mem, "swap", 0)
        user, system, percent = user + cpu.user, system + cpu.system, percent + pct
        pids[str(p.pid)] = _usage(mem.rss, 0, cpu.user, cpu.system, pct)
    return {"ResourceUsage": _usage(rss, swap, user, system, percent), "Timestamp": now, "Pids": pids}


def alloc_usage(task_pids: Mapping[str, int]) -> dict[str, Any]:
    """Nomad's ``AllocResourceUsage`` of the tasks (name → pid) that run."""
    now = time.time_ns()
    tasks = {name: _task_usage(pid, now) for name, pid in task_pids.items()}
    total = _usage(0, 0, 0.0, 0.0, 0.0)
    for t in tasks.values():
        mem, cpu = t["ResourceUsage"]["MemoryStats"], t["ResourceUsage"]["CpuStats"]
        for key in ("RSS", "Swap", "Usage"):
            total["MemoryStats"][key] += mem[key]
        for key in ("SystemMode", "UserMode", "Percent"):
            total["CpuStats"][key] += cpu[key]
    return {"ResourceUsage": total, "Tasks": tasks, "Timestamp": now}
