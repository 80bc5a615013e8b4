"""The ``raw_exec`` driver: runs the task's ``command`` with ``args`` as the agent's user, with
no isolation and no resource limits, in its own session and process group under an executor.

Disabled unless enabled in the agent config (``raw_exec_enabled``, Nomad's
``plugin "raw_exec" { config { enabled = true } }``); a disabled driver fingerprints as
undetected with health description ``disabled``. When the agent runs as root, the task's
``user`` is honoured (setgroups/setgid/setuid); otherwise a ``user`` other than the agent's is
refused.
"""

from __future__ import annotations

import os
import pwd
import time
from typing import ClassVar

from nomadd.drivers.base import (
    HEALTH_DISABLED,
    HEALTH_HEALTHY,
    TaskConfig,
)
from nomadd.drivers.executor_driver import ExecutorDriver, LaunchPlan
from nomadd.structs.errors import DriverError
from nomadd.structs.node import DriverInfo
from nomadd.structs.timeutil import format_time


def user_identity(user: str) -> tuple[int, int, list[int]]:
    """(uid, gid, supplementary groups) of a user name; DriverError if unknown."""
    try:
        pw = pwd.getpwnam(user)
    except KeyError as err:
        raise DriverError(f"unknown user {user!r}") from err
    return pw.pw_uid, pw.pw_gid, os.getgrouplist(pw.pw_name, pw.pw_gid)


class RawExecDriver(ExecutorDriver):
    name: ClassVar[str] = "raw_exec"
    enabled_by_default: ClassVar[bool] = False

    def fingerprint(self) -> DriverInfo:
        if not self.enabled:
            return DriverInfo(
                detected=False,
                healthy=False,
                health_description=HEALTH_DISABLED,
                update_time=format_time(time.time_ns()),
            )
        return DriverInfo(
            detected=True,
            healthy=True,
            health_description=HEALTH_HEALTHY,
            attributes={"driver.raw_exec": "true"},
            update_time=format_time(time.time_ns()),
        )

    def plan(self, cfg: TaskConfig) -> LaunchPlan:
        if not cfg.user:
            return LaunchPlan()
        uid, gid, groups = user_identity(cfg.user)
        if os.geteuid() == 0:
            return LaunchPlan(uid=uid, gid=gid, groups=groups)
        if uid != os.geteuid():
            raise DriverError(
                f"task {cfg.task_name}: raw_exec cannot run as user {cfg.user!r} "
                "unless the agent runs as root"
            )
        return LaunchPlan()
