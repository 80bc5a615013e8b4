"""The ``exec`` driver: like raw_exec but isolated — root only.

Isolation it gives (be precise, it is less than Nomad's exec):

* the task runs as ``nobody`` or the task's ``user`` (setgroups/setgid/setuid before exec);
* in its own session and process group; stop kills the whole group and every process of its
  cgroups;
* resource limits through cgroups when the host has a writable hierarchy
  (:mod:`nomadd.drivers.cgroups`: v2 ``memory.max``/``cpu.weight`` or v1
  ``memory.limit_in_bytes``/``cpu.shares``); without one the task runs **unlimited** and a warning
  is logged (no RLIMIT_AS: it breaks runtimes that reserve address space, e.g. Go and Java);
* **no** filesystem isolation: there is no chroot/pivot_root and no mount or PID namespace; the
  task sees the host filesystem with the permissions of its user. Its own dirs are
  ``local/`` and ``secrets/`` (0700) in the task dir, owned by the task user.

Fingerprint: detected only when the agent runs as root on Linux (``driver.exec = "true"``);
the attribute ``driver.exec.cgroup`` says ``v2``, ``v1`` or ``none``.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import ClassVar

from nomadd.drivers import cgroups
from nomadd.drivers.base import HEALTH_HEALTHY, HEALTH_UNDETECTED, TaskConfig
from nomadd.drivers.executor_driver import ExecutorDriver, LaunchPlan
from nomadd.drivers.raw_exec import user_identity
from nomadd.structs.errors import DriverError
from nomadd.structs.node import DriverInfo
from nomadd.structs.timeutil import format_time

logger = logging.getLogger(__name__)

DEFAULT_TASK_USER = "nobody"


class ExecDriver(ExecutorDriver):
    name: ClassVar[str] = "exec"

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
        description = HEALTH_HEALTHY
        if version == "none":
            description = f"{HEALTH_HEALTHY} (no writable cgroups: resource limits not enforced)"
        return DriverInfo(
            detected=True,
            healthy=True,
            health_description=description,
            attributes={"driver.exec": "true", "driver.exec.cgroup": version},
            update_time=now,
        )

    def plan(self, cfg: TaskConfig) -> LaunchPlan:
        if os.geteuid() != 0:
            raise DriverError("exec driver must run as root")
        uid, gid, groups = user_identity(cfg.user or DEFAULT_TASK_USER)
        try:
            plan = cgroups.create(cfg.task_id, cfg.cpu_mhz, cfg.memory_mb)
        except OSError as err:
            logger.warning(
                "cannot create task cgroups, running without limits task=%s err=%s",
                cfg.task_name,
                err,
            )
            plan = cgroups.CgroupPlan(version="none")
        if plan.version == "none":
            logger.warning(
                "no writable cgroup hierarchy, task resources are not enforced task=%s",
                cfg.task_name,
            )
        return LaunchPlan(uid=uid, gid=gid, groups=groups, cgroups=plan)
