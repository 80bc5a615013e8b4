"""The ``exec`` driver: a task isolated as Nomad's exec driver isolates it — root only, Linux.

* its own root: the task dir, with Nomad's ``chroot_env`` bound read-only, ``/etc/shadow`` and
  kin masked, ``/alloc``, ``/local``, ``/secrets``, ``/tmp``, a small ``/dev``, a fresh ``/proc``
  and the task's host volumes (:mod:`nomadd.drivers.isolation`); ``NOMAD_ALLOC_DIR``,
  ``NOMAD_TASK_DIR`` and ``NOMAD_SECRETS_DIR`` are the paths inside it;
* its own mount, PID (``pid_mode = "host"`` shares the host's) and IPC (``ipc_mode``) namespaces;
* the task runs as ``nobody`` or the task's ``user``, with ``no_new_privs`` and a bounding set
  of Nomad's default capabilities (less the task's ``cap_drop``, plus its ``cap_add`` from the
  default set);
* resource limits through cgroups v1 or v2 (:mod:`nomadd.drivers.cgroups`): ``memory`` is a
  hard limit without swap; a task over it is OOM-killed and its Terminated event says so.

Fingerprint: detected when the agent runs as root on Linux, a cgroup hierarchy with the memory
and cpu controllers is writable and namespaces can be created; otherwise undetected with the
reason in the health description. Attributes ``driver.exec = "true"`` and ``driver.exec.cgroup``
(``v2`` or ``v1``).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from typing import Any, ClassVar

from nomadd.drivers import cgroups, isolation
from nomadd.drivers.base import HEALTH_HEALTHY, HEALTH_UNDETECTED, TaskConfig
from nomadd.drivers.executor_driver import ExecutorDriver, LaunchPlan
from nomadd.drivers.raw_exec import user_identity
from nomadd.structs.errors import DriverError
from nomadd.structs.node import DriverInfo
from nomadd.structs.timeutil import format_time

DEFAULT_TASK_USER = "nobody"
# The agent's ``plugin "exec" { config { ... } }`` keys that reach the driver as options.
PLUGIN_OPTIONS = ("default_pid_mode", "default_ipc_mode", "allow_caps")


class ExecDriver(ExecutorDriver):
    name: ClassVar[str] = "exec"
    _probe: str | None = None  # the namespace probe's verdict ("" = fine), taken once

    def fingerprint(self) -> DriverInfo:
        now = format_time(time.time_ns())
        if not self.enabled:
            return DriverInfo(detected=False, healthy=False, health_description="disabled", update_time=now)
        if not sys.platform.startswith("linux"):
            return DriverInfo(
                detected=False,
                healthy=False,
                health_description="exec driver is only supported on linux",
                update_time=now,
            )
        if os.geteuid() != 0:
            return DriverInfo(
                detected=False,
                healthy=False,
                health_description=f"{HEALTH_UNDETECTED}: exec driver must run as root",
                update_time=now,
            )
        version = cgroups.detect()
        why = ""
        if version == "none":
            why = "no writable cgroup hierarchy with the memory and cpu controllers"
        else:
            if self._probe is None:
                self._probe = isolation.probe()
            why = self._probe
        if why:
            return DriverInfo(
                detected=False,
                healthy=False,
                health_description=f"{HEALTH_UNDETECTED}: {why}",
                attributes={"driver.exec.cgroup": version},
                update_time=now,
            )
        return DriverInfo(
            detected=True,
            healthy=True,
            health_description=HEALTH_HEALTHY,
            attributes={"driver.exec": "true", "driver.exec.cgroup": version},
            update_time=now,
        )

    def plan(self, cfg: TaskConfig) -> LaunchPlan:
        if os.geteuid() != 0:
            raise DriverError("exec driver must run as root")
        iso = isolation_of(cfg, self.config.options)
        uid, gid, groups = user_identity(cfg.user or DEFAULT_TASK_USER)
        try:
            plan = cgroups.create(cfg.task_id, cfg.cpu_mhz, cfg.memory_mb)
        except OSError as err:
            raise DriverError(f"cannot create the task's cgroups: {err}") from err
        if plan.version == "none":
            raise DriverError("no writable cgroup hierarchy: the exec driver cannot limit the task")
        return LaunchPlan(
            uid=uid, gid=gid, groups=groups, cgroups=plan, isolation=iso, env=isolation.TASK_ENV
        )


def isolation_of(cfg: TaskConfig, options: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The isolation spec of a task (validated driver options and mounts); DriverError if bad.

    ``options`` are the agent's exec plugin options (:data:`PLUGIN_OPTIONS`): the defaults of
    ``pid_mode``/``ipc_mode`` and ``allow_caps`` (comma-separated)."""
    options = options or {}
    modes = {}
    for key in ("pid_mode", "ipc_mode"):
        mode = cfg.config.get(key, "") or options.get(f"default_{key}", "") or "private"
        if mode not in ("private", "host"):
            raise DriverError(f'task {cfg.task_name}: {key} must be "private" or "host", not {mode!r}')
        modes[key] = mode
    try:
        allow = options.get("allow_caps")
        allowed = isolation.allowed_caps(None if allow is None else allow.split(","))
        caps = isolation.task_caps(cfg.config.get("cap_add"), cfg.config.get("cap_drop"), allowed)
    except ValueError as err:
        raise DriverError(f"task {cfg.task_name}: {err}") from err
    mounts = []
    for m in cfg.mounts:
        dest = os.path.normpath("/" + m.task_path)
        if not m.task_path.startswith("/") or ".." in m.task_path.split("/") or dest == "/":
            raise DriverError(f"task {cfg.task_name}: bad mount destination {m.task_path!r}")
        if not os.path.exists(m.host_path):
            raise DriverError(f"task {cfg.task_name}: host path {m.host_path!r} of a mount does not exist")
        mounts.append({"host_path": m.host_path, "task_path": dest, "read_only": m.read_only})
    return {
        "root": cfg.task_dir,
        "alloc_dir": cfg.alloc_dir,
        "chroot_env": dict(isolation.DEFAULT_CHROOT_ENV),
        "mounts": mounts,
        "caps": sorted(caps),
        **modes,
    }
