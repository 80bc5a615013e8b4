"""Resource limits for the exec driver through cgroups, when the host offers a writable hierarchy.

Detection (:func:`detect`), in order:

* **v2**: ``/sys/fs/cgroup`` is a cgroup2 mount whose ``cgroup.controllers`` lists ``cpu`` and
  ``memory`` and is writable → ``/sys/fs/cgroup/nomad.slice/<alloc>.<task>.scope`` with
  ``memory.max`` and ``cpu.weight``;
* **v1**: writable ``/sys/fs/cgroup/memory`` and ``/sys/fs/cgroup/cpu`` → ``<ctrl>/nomad/<alloc>.<task>``
  with ``memory.limit_in_bytes`` and ``cpu.shares`` (= task MHz, as Nomad);
* **none**: no limits; the driver logs a warning at task start. (A cgroup2 hierarchy without
  controllers, as ``/sys/fs/cgroup/unified`` on hybrid hosts, cannot limit anything.)

The task joins its cgroups before exec (the executor's child writes ``0`` to ``cgroup.procs``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

CGROUP_ROOT = "/sys/fs/cgroup"
V2_PARENT = "nomad.slice"
V1_PARENT = "nomad"
V1_CONTROLLERS = ("memory", "cpu")
BYTES_PER_MB = 1024 * 1024
# How long destroy() retries removing a cgroup whose processes are still dying.
RMDIR_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True, kw_only=True)
class CgroupPlan:
    """The cgroup directories of one task and the files the executor uses."""

    version: str  # "v2", "v1" or "none"
    dirs: tuple[str, ...] = ()
    procs_files: tuple[str, ...] = field(default=())
    oom_files: tuple[str, ...] = field(default=())


def _writable(path: str) -> bool:
    return os.path.isdir(path) and os.access(path, os.W_OK)


def detect(root: str = CGROUP_ROOT) -> str:
    """ "v2", "v1" or "none" for this host (see module doc)."""
    controllers = os.path.join(root, "cgroup.controllers")
    try:
        with open(controllers) as f:
            names = set(f.read().split())
        if {"cpu", "memory"} <= names and _writable(root):
            return "v2"
    except OSError:
        pass
    if all(_writable(os.path.join(root, c)) for c in V1_CONTROLLERS):
        return "v1"
    return "none"


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def cpu_weight(shares: int) -> int:
    """cgroup v2 cpu.weight for v1 cpu.shares (the runc/Nomad conversion)."""
    shares = max(2, min(shares, 262144))
    return 1 + ((shares - 2) * 9999) // 262142


def create(task_id: str, cpu_mhz: int, memory_mb: int, root: str = CGROUP_ROOT) -> CgroupPlan:
    """Create the task's cgroups with its limits; raises OSError when the host refuses (after
    removing the dirs it made)."""
    version = detect(root)
    made: list[str] = []
    try:
        return _create(version, task_id, cpu_mhz, memory_mb, root, made)
    except OSError:
        for d in reversed(made):
            with contextlib.suppress(OSError):
                os.rmdir(d)
        raise


def _create(
    version: str, task_id: str, cpu_mhz: int, memory_mb: int, root: str, made: list[str]
) -> CgroupPlan:
    name = task_id.replace("/", "_")
    if version == "v2":
        parent = os.path.join(root, V2_PARENT)
        os.makedirs(parent, exist_ok=True)
        for ctl in (root, parent):
            with contextlib.suppress(OSError):
                _write(os.path.join(ctl, "cgroup.subtree_control"), "+cpu +memory")
        d = os.path.join(parent, f"{name}.scope")
        os.makedirs(d, exist_ok=True)
        made.append(d)
        if memory_mb > 0:
            _write(os.path.join(d, "memory.max"), str(memory_mb * BYTES_PER_MB))
            # No swap: otherwise a task over its limit swaps slowly instead of being OOM-killed.
            with contextlib.suppress(OSError):  # absent without swap accounting
                _write(os.path.join(d, "memory.swap.max"), "0")
        _write(os.path.join(d, "cpu.weight"), str(cpu_weight(cpu_mhz)))
        return CgroupPlan(
            version="v2",
            dirs=(d,),
            procs_files=(os.path.join(d, "cgroup.procs"),),
            oom_files=(os.path.join(d, "memory.events"),),
        )
    if version == "v1":
        mem = os.path.join(root, "memory", V1_PARENT, name)
        cpu = os.path.join(root, "cpu", V1_PARENT, name)
        os.makedirs(mem, exist_ok=True)
        made.append(mem)
        os.makedirs(cpu, exist_ok=True)
        made.append(cpu)
        if memory_mb > 0:
            limit = str(memory_mb * BYTES_PER_MB)
            _write(os.path.join(mem, "memory.limit_in_bytes"), limit)
            # memory+swap = memory: no swap (see v2). Absent without swap accounting.
            with contextlib.suppress(OSError):
                _write(os.path.join(mem, "memory.memsw.limit_in_bytes"), limit)
        _write(os.path.join(cpu, "cpu.shares"), str(max(2, cpu_mhz)))
        return CgroupPlan(
            version="v1",
            dirs=(mem, cpu),
            procs_files=(os.path.join(mem, "cgroup.procs"), os.path.join(cpu, "cgroup.procs")),
            oom_files=(os.path.join(mem, "memory.oom_control"),),
        )
    return CgroupPlan(version="none")


def pids(directory: str) -> list[int]:
    try:
        with open(os.path.join(directory, "cgroup.procs")) as f:
            return [int(x) for x in f.read().split()]
    except (OSError, ValueError):
        return []


def kill_all(dirs: tuple[str, ...] | list[str]) -> int:
    """SIGKILL every process in the cgroups; the number of processes signalled."""
    n = 0
    for d in dirs:
        for pid in pids(d):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                n += 1
    return n


def remove(dirs: tuple[str, ...] | list[str]) -> None:
    """Kill what is left and remove the cgroup dirs; retries briefly while processes die.

    Blocking (short sleeps): call through ``asyncio.to_thread``.
    """
    deadline = time.monotonic() + RMDIR_TIMEOUT_S
    for d in dirs:
        while os.path.isdir(d):
            kill_all([d])
            try:
                os.rmdir(d)
            except FileNotFoundError:
                break
            except OSError as err:
                if time.monotonic() >= deadline:
                    logger.warning("cannot remove cgroup path=%s err=%s", d, err)
                    break
                time.sleep(0.02)
