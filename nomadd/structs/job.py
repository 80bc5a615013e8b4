"""Jobs, task groups and tasks (Nomad's job specification) with Canonicalize and Validate."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from dataclasses import field
from enum import StrEnum

from nomadd.structs.constraint import Constraint
from nomadd.structs.policy import (
    ReschedulePolicy,
    RestartPolicy,
    UpdateStrategy,
    default_reschedule_policy,
    default_restart_policy,
)
from nomadd.structs.resources import EphemeralDisk, Resources
from nomadd.structs.summary import JobSummary
from nomadd.structs.timeutil import NS_PER_S

__all__ = [
    "DEFAULT_JOB_PRIORITY",
    "DEFAULT_KILL_TIMEOUT_NS",
    "Job",
    "JobListStub",
    "JobStatus",
    "JobType",
    "LogConfig",
    "Task",
    "TaskGroup",
]

DEFAULT_JOB_PRIORITY = 50  # Nomad's JobDefaultPriority
DEFAULT_KILL_TIMEOUT_NS = 5 * NS_PER_S  # Nomad's default task kill_timeout


class JobType(StrEnum):
    SERVICE = "service"
    BATCH = "batch"
    SYSTEM = "system"


class JobStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DEAD = "dead"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class LogConfig:
    max_files: int = 10
    max_file_size_mb: int = 10
    disabled: bool = False


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Task:
    name: str = ""
    driver: str = ""
    user: str = ""
    config: Mapping[str, object] = field(default_factory=dict)  # driver-specific, any JSON
    env: Mapping[str, str] = field(default_factory=dict)
    constraints: tuple[Constraint, ...] = ()
    resources: Resources = field(default_factory=Resources)
    restart_policy: RestartPolicy | None = None  # overrides the group's when set
    meta: Mapping[str, str] = field(default_factory=dict)
    kill_timeout: int = DEFAULT_KILL_TIMEOUT_NS  # ns
    kill_signal: str = ""  # empty: SIGINT, as Nomad
    log_config: LogConfig = field(default_factory=LogConfig)
    leader: bool = False


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TaskGroup:
    name: str = ""
    count: int = 1
    constraints: tuple[Constraint, ...] = ()
    tasks: tuple[Task, ...] = ()
    restart_policy: RestartPolicy | None = None  # canonicalize fills the job type's default
    reschedule_policy: ReschedulePolicy | None = None
    update: UpdateStrategy | None = None
    ephemeral_disk: EphemeralDisk = field(default_factory=EphemeralDisk)
    meta: Mapping[str, str] = field(default_factory=dict)

    def resources(self) -> tuple[int, int, int]:
        """Total (cpu MHz, memory MB, disk MB) one allocation of this group asks for."""
        cpu = mem = 0
        for task in self.tasks:
            cpu += task.resources.cpu
            mem += task.resources.memory_mb
        return cpu, mem, self.ephemeral_disk.size_mb


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class JobListStub:
    """One row of ``GET /v1/jobs``."""

    id: str = ""
    parent_id: str = ""
    name: str = ""
    namespace: str = "default"
    datacenters: tuple[str, ...] = ()
    node_pool: str = "default"
    type: JobType = JobType.SERVICE
    priority: int = DEFAULT_JOB_PRIORITY
    periodic: bool = False
    parameterized_job: bool = False
    stop: bool = False
    status: JobStatus = JobStatus.PENDING
    status_description: str = ""
    job_summary: JobSummary | None = None
    create_index: int = 0
    modify_index: int = 0
    job_modify_index: int = 0
    submit_time: int = 0
    meta: Mapping[str, str] = field(default_factory=dict)


# Fields that bookkeeping changes and that do not make a new job version.
_NON_SPEC_FIELDS = frozenset(
    {
        "status",
        "status_description",
        "stable",
        "version",
        "submit_time",
        "create_index",
        "modify_index",
        "job_modify_index",
    }
)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    id: str = ""
    parent_id: str = ""
    name: str = ""
    namespace: str = "default"
    region: str = "global"
    type: JobType = JobType.SERVICE
    priority: int = DEFAULT_JOB_PRIORITY
    all_at_once: bool = False
    datacenters: tuple[str, ...] = ()
    node_pool: str = "default"
    constraints: tuple[Constraint, ...] = ()
    task_groups: tuple[TaskGroup, ...] = ()
    update: UpdateStrategy | None = None
    meta: Mapping[str, str] = field(default_factory=dict)
    stop: bool = False
    status: JobStatus = JobStatus.PENDING
    status_description: str = ""
    stable: bool = False
    version: int = 0
    submit_time: int = 0  # Unix ns, set by the endpoint
    create_index: int = 0
    modify_index: int = 0
    job_modify_index: int = 0

    def lookup_task_group(self, name: str) -> TaskGroup | None:
        for tg in self.task_groups:
            if tg.name == name:
                return tg
        return None

    def canonicalize(self) -> Job:
        """A copy with Nomad's defaults filled in (Name from ID, per-type policies...)."""
        job_type = str(self.type)
        groups = []
        for tg in self.task_groups:
            restart = tg.restart_policy or default_restart_policy(job_type)
            reschedule = tg.reschedule_policy
            if reschedule is None:
                reschedule = default_reschedule_policy(job_type)
            update = tg.update
            if update is None and self.update is not None and self.type == JobType.SERVICE:
                update = self.update
            groups.append(
                dataclasses.replace(tg, restart_policy=restart, reschedule_policy=reschedule, update=update)
            )
        return dataclasses.replace(
            self,
            name=self.name or self.id,
            namespace=self.namespace or "default",
            region=self.region or "global",
            node_pool=self.node_pool or "default",
            priority=self.priority or DEFAULT_JOB_PRIORITY,
            task_groups=tuple(groups),
        )

    def validate(self, known_drivers: Collection[str] | None = None) -> None:
        """Raise ValidationError naming every invalid field (``known_drivers`` None: skip)."""
        from nomadd.structs.job_validate import validate_job

        validate_job(self, known_drivers)

    def spec_equal(self, other: Job) -> bool:
        """Same specification, ignoring status, version, submit time and indexes."""
        if self is other:
            return True
        for f in dataclasses.fields(Job):
            if f.name in _NON_SPEC_FIELDS:
                continue
            if getattr(self, f.name) != getattr(other, f.name):
                return False
        return True

    def stub(self, summary: JobSummary | None = None) -> JobListStub:
        return JobListStub(
            id=self.id,
            parent_id=self.parent_id,
            name=self.name,
            namespace=self.namespace,
            datacenters=self.datacenters,
            node_pool=self.node_pool,
            type=self.type,
            priority=self.priority,
            stop=self.stop,
            status=self.status,
            status_description=self.status_description,
            job_summary=summary,
            create_index=self.create_index,
            modify_index=self.modify_index,
            job_modify_index=self.job_modify_index,
            submit_time=self.submit_time,
            meta=self.meta,
        )
