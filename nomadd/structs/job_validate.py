"""Validation of a canonicalized job (Nomad's Job.Validate), naming bad fields by API path."""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import TYPE_CHECKING

from nomadd.structs.constraint import Constraint
from nomadd.structs.errors import ValidationError
from nomadd.structs.policy import RestartPolicy
from nomadd.structs.resources import MIN_CPU_MHZ, MIN_MEMORY_MB

if TYPE_CHECKING:
    from nomadd.structs.job import Job, Task, TaskGroup

__all__ = ["validate_job"]

MAX_JOB_PRIORITY = 100
_VALID_NAME = re.compile(r"^[^\s\x00]+$")  # no whitespace, no NUL (Nomad: "contains a space")


def validate_job(job: Job, known_drivers: Collection[str] | None) -> None:
    """Raise :class:`ValidationError` listing every problem as ``Job.<path>: <what>``."""
    errs: list[str] = []
    if not job.id:
        errs.append("Job.ID: missing job ID")
    elif not _VALID_NAME.match(job.id):
        errs.append("Job.ID: job ID contains a space or a null character")
    if not job.name:
        errs.append("Job.Name: missing job name")
    if not job.datacenters:
        errs.append("Job.Datacenters: missing job datacenters")
    for i, dc in enumerate(job.datacenters):
        if not dc:
            errs.append(f"Job.Datacenters[{i}]: empty datacenter name")
    if not 1 <= job.priority <= MAX_JOB_PRIORITY:
        errs.append(f"Job.Priority: must be between 1 and {MAX_JOB_PRIORITY}, got {job.priority}")
    _constraints(errs, "Job.Constraints", job.constraints)
    if job.update is not None:
        errs.extend(f"Job.Update.{p}" for p in job.update.problems())
    if not job.task_groups:
        errs.append("Job.TaskGroups: missing job task groups")
    seen: set[str] = set()
    for i, tg in enumerate(job.task_groups):
        path = f"Job.TaskGroups[{i}]"
        if tg.name in seen:
            errs.append(f"{path}.Name: duplicate task group name {tg.name!r}")
        seen.add(tg.name)
        _group(errs, path, tg, str(job.type), known_drivers)
    if errs:
        raise ValidationError("; ".join(errs))


def _group(errs: list[str], path: str, tg: TaskGroup, job_type: str, drivers: Collection[str] | None) -> None:
    if not tg.name:
        errs.append(f"{path}.Name: missing task group name")
    if tg.count < 0:
        errs.append(f"{path}.Count: must be >= 0, got {tg.count}")
    if job_type == "system" and tg.count > 1:
        errs.append(f"{path}.Count: a system job runs one per node, count must be 0 or 1")
    _constraints(errs, f"{path}.Constraints", tg.constraints)
    if tg.restart_policy is not None:
        _restart(errs, f"{path}.RestartPolicy", tg.restart_policy)
    rp = tg.reschedule_policy
    if rp is not None:
        rpath = f"{path}.ReschedulePolicy"
        for name, value in (
            ("Attempts", rp.attempts),
            ("Interval", rp.interval),
            ("Delay", rp.delay),
            ("MaxDelay", rp.max_delay),
        ):
            if value < 0:
                errs.append(f"{rpath}.{name}: must be >= 0")
        if rp.delay_function not in ("constant", "exponential", "fibonacci"):
            errs.append(f"{rpath}.DelayFunction: invalid value {rp.delay_function!r}")
    if tg.update is not None:
        errs.extend(f"{path}.Update.{p}" for p in tg.update.problems())
    if tg.ephemeral_disk.size_mb < 0:
        errs.append(f"{path}.EphemeralDisk.SizeMB: must be >= 0")
    if not tg.tasks:
        errs.append(f"{path}.Tasks: missing tasks for task group {tg.name!r}")
    names: set[str] = set()
    leaders = 0
    for j, task in enumerate(tg.tasks):
        tpath = f"{path}.Tasks[{j}]"
        if task.name in names:
            errs.append(f"{tpath}.Name: duplicate task name {task.name!r}")
        names.add(task.name)
        leaders += task.leader
        _task(errs, tpath, task, drivers)
    if leaders > 1:
        errs.append(f"{path}.Tasks: only one task may be marked as leader")


def _task(errs: list[str], path: str, task: Task, drivers: Collection[str] | None) -> None:
    if not task.name:
        errs.append(f"{path}.Name: missing task name")
    elif "/" in task.name or "\x00" in task.name:
        errs.append(f"{path}.Name: task name contains '/' or a null character")
    if not task.driver:
        errs.append(f"{path}.Driver: missing task driver")
    elif drivers is not None and task.driver not in drivers:
        errs.append(f"{path}.Driver: unknown driver {task.driver!r}")
    res = task.resources
    if res.cpu < MIN_CPU_MHZ:
        errs.append(f"{path}.Resources.CPU: minimum CPU value is {MIN_CPU_MHZ}; got {res.cpu}")
    if res.memory_mb < MIN_MEMORY_MB:
        errs.append(
            f"{path}.Resources.MemoryMB: minimum MemoryMB value is {MIN_MEMORY_MB}; got {res.memory_mb}"
        )
    if res.memory_max_mb and res.memory_max_mb < res.memory_mb:
        errs.append(f"{path}.Resources.MemoryMaxMB: must be >= MemoryMB")
    if res.cores < 0:
        errs.append(f"{path}.Resources.Cores: must be >= 0")
    if task.kill_timeout < 0:
        errs.append(f"{path}.KillTimeout: duration must be >= 0")
    if task.log_config.max_files < 1:
        errs.append(f"{path}.LogConfig.MaxFiles: must be >= 1")
    if task.log_config.max_file_size_mb < 1:
        errs.append(f"{path}.LogConfig.MaxFileSizeMB: must be >= 1")
    if task.restart_policy is not None:
        _restart(errs, f"{path}.RestartPolicy", task.restart_policy)
    _constraints(errs, f"{path}.Constraints", task.constraints)


def _restart(errs: list[str], path: str, rp: RestartPolicy) -> None:
    if rp.attempts < 0:
        errs.append(f"{path}.Attempts: must be >= 0")
    if rp.interval < 0:
        errs.append(f"{path}.Interval: duration must be >= 0")
    if rp.delay < 0:
        errs.append(f"{path}.Delay: duration must be >= 0")
    if rp.attempts and rp.interval and rp.delay * rp.attempts > rp.interval:
        errs.append(
            f"{path}: Nomad requires Delay * Attempts <= Interval "
            f"({rp.delay} * {rp.attempts} > {rp.interval})"
        )


def _constraints(errs: list[str], path: str, items: tuple[Constraint, ...]) -> None:
    for i, c in enumerate(items):
        errs.extend(f"{path}[{i}].{p}" for p in c.problems())
