"""Jobs, task groups and tasks (Nomad's job specification) with Canonicalize and Validate."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Mapping
from dataclasses import field
from enum import StrEnum
from typing import ClassVar

from nomadd.structs.codec_diff import fast_replace
from nomadd.structs.constraint import Constraint
from nomadd.structs.disconnect import DisconnectStrategy, group_problems
from nomadd.structs.errors import ValidationError
from nomadd.structs.job_sizes import MAX_REPORTED, check_length, check_meta, check_size
from nomadd.structs.lifecycle import TaskLifecycle
from nomadd.structs.limits import DEFAULT_LIMITS, Limits
from nomadd.structs.migrate import DEFAULT_MIGRATE, MigrateStrategy
from nomadd.structs.network import network_problems
from nomadd.structs.periodic import (
    DispatchPayloadConfig,
    ParameterizedJobConfig,
    PeriodicConfig,
    parameterized_problems,
    payload_file_problem,
    periodic_problems,
)
from nomadd.structs.policy import (
    ReschedulePolicy,
    RestartPolicy,
    UpdateStrategy,
    default_reschedule_policy,
    default_restart_policy,
)
from nomadd.structs.resources import (
    MAX_CORES,
    MAX_CPU_MHZ,
    MAX_DISK_MB,
    MAX_MEMORY_MB,
    MIN_CPU_MHZ,
    MIN_MEMORY_MB,
    EphemeralDisk,
    NetworkResource,
    Resources,
)
from nomadd.structs.scaling import ScalingPolicy
from nomadd.structs.services import Service, canonical_services, service_problems
from nomadd.structs.summary import JobSummary
from nomadd.structs.timeutil import NS_PER_S
from nomadd.structs.volumes import VolumeMount, VolumeRequest, mount_problems, volume_problems

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
    "validate_job",
]

DEFAULT_JOB_PRIORITY = 50  # Nomad's JobDefaultPriority
DEFAULT_KILL_TIMEOUT_NS = 5 * NS_PER_S  # Nomad's default task kill_timeout


class JobType(StrEnum):
    SERVICE = "service"
    BATCH = "batch"
    SYSTEM = "system"
    SYSBATCH = "sysbatch"  # on every feasible node like system, to completion like batch


class JobStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DEAD = "dead"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class LogConfig:
    # Nomad's api.LogConfig keys nomadd has no field for, sent at their zero value (codec.to_api)
    NOMAD_ONLY: ClassVar[Mapping[str, object]] = {"Enabled": None}

    max_files: int = 10
    max_file_size_mb: int = 10
    disabled: bool = False


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Task:
    # Nomad's api.Task keys nomadd has no field for, sent at their zero value (codec.to_api)
    NOMAD_ONLY: ClassVar[Mapping[str, object]] = {
        "Affinities": None,
        "Artifacts": None,
        "Vault": None,
        "Consul": None,
        "Templates": None,
        "ShutdownDelay": 0,
        "Kind": "",
        "ScalingPolicies": None,
        "Secrets": None,
        "Identity": None,
        "Identities": None,
        "Actions": None,
        "Schedule": None,
    }

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
    lifecycle: TaskLifecycle | None = None  # None: a main task
    volume_mounts: tuple[VolumeMount, ...] = ()
    dispatch_payload: DispatchPayloadConfig | None = None
    services: tuple[Service, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TaskGroup:
    # Nomad's api.TaskGroup keys nomadd has no field for, sent at their zero value (codec.to_api)
    NOMAD_ONLY: ClassVar[Mapping[str, object]] = {
        "Affinities": None,
        "Spreads": None,
        "ShutdownDelay": None,
        "MaxRunDuration": None,
        "StopAfterClientDisconnect": None,
        "Consul": None,
        "PreventRescheduleOnLost": None,
    }

    name: str = ""
    count: int = 1
    constraints: tuple[Constraint, ...] = ()
    tasks: tuple[Task, ...] = ()
    restart_policy: RestartPolicy | None = None  # canonicalize fills the job type's default
    reschedule_policy: ReschedulePolicy | None = None
    update: UpdateStrategy | None = None
    migrate: MigrateStrategy | None = None  # canonicalize: Nomad's default for service jobs
    ephemeral_disk: EphemeralDisk = field(default_factory=EphemeralDisk)
    meta: Mapping[str, str] = field(default_factory=dict)
    networks: tuple[NetworkResource, ...] = ()
    volumes: Mapping[str, VolumeRequest] = field(default_factory=dict)
    scaling: ScalingPolicy | None = None  # the group's scaling {} block (bounds for job scale)
    disconnect: DisconnectStrategy | None = None
    max_client_disconnect: int | None = None  # ns; the legacy form of disconnect.lost_after
    services: tuple[Service, ...] = ()

    def all_services(self) -> tuple[Service, ...]:
        """The group's services and its tasks'."""
        return self.services + tuple(s for t in self.tasks for s in t.services)

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
    # Nomad's api.Job keys nomadd has no field for, sent at their zero value (codec.to_api)
    NOMAD_ONLY: ClassVar[Mapping[str, object]] = {
        "Affinities": None,
        "Multiregion": None,
        "Spreads": None,
        "UI": None,
        "ConsulNamespace": None,
        "VaultNamespace": None,
        "NomadTokenID": None,
        "VersionTag": None,
    }

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
    migrate: MigrateStrategy | None = None  # canonicalize gives it to the groups without one
    meta: Mapping[str, str] = field(default_factory=dict)
    periodic: PeriodicConfig | None = None
    parameterized_job: ParameterizedJobConfig | None = None
    dispatched: bool = False
    dispatch_idempotency_token: str = ""
    payload: str | None = None  # base64 of the dispatch payload, as Nomad's API shows []byte
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

    def is_periodic(self) -> bool:
        """A periodic template (Nomad's IsPeriodic: its children are not)."""
        return self.periodic is not None

    def is_periodic_active(self) -> bool:
        """Launched by the periodic dispatcher (Nomad's IsPeriodicActive)."""
        return (
            self.periodic is not None
            and self.periodic.enabled
            and not self.stop
            and not self.is_parameterized()
        )

    def is_parameterized(self) -> bool:
        """A dispatch template; its dispatched children are not (Nomad's IsParameterized)."""
        return self.parameterized_job is not None and not self.dispatched

    def is_template(self) -> bool:
        """Registering it makes no evaluation: only its children run."""
        return self.is_periodic() or self.is_parameterized()

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
            migrate = tg.migrate or self.migrate  # the group's block wins whole (Nomad: per field)
            if migrate is None and self.type == JobType.SERVICE:
                migrate = DEFAULT_MIGRATE
            tg = fast_replace(
                tg, restart_policy=restart, reschedule_policy=reschedule, update=update, migrate=migrate
            )
            groups.append(_canonical_group_services(tg, self.name or self.id))
        return fast_replace(  # every job register copies the job and its groups: not dataclasses.replace
            self,
            name=self.name or self.id,
            namespace=self.namespace or "default",
            region=self.region or "global",
            node_pool=self.node_pool or "default",
            priority=self.priority or DEFAULT_JOB_PRIORITY,
            task_groups=tuple(groups),
        )

    def validate(self, known_drivers: Collection[str] | None = None, limits: Limits = DEFAULT_LIMITS) -> None:
        """Raise ValidationError naming every invalid field (``known_drivers`` None: skip)."""
        validate_job(self, known_drivers, limits)

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
            periodic=self.is_periodic(),
            parameterized_job=self.parameterized_job is not None,
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


def _canonical_group_services(tg: TaskGroup, job_name: str) -> TaskGroup:
    if not tg.services and not any(t.services for t in tg.tasks):
        return tg
    tasks = tuple(
        dataclasses.replace(t, services=canonical_services(t.services, job_name, tg.name, t.name))
        for t in tg.tasks
    )
    return dataclasses.replace(tg, services=canonical_services(tg.services, job_name, tg.name), tasks=tasks)


# ---- validation (Nomad's Job.Validate), naming bad fields by API path ----------------------

MAX_JOB_PRIORITY = 100
_VALID_NAME = re.compile(r"^[^\s\x00]+$")  # no whitespace, no NUL (Nomad: "contains a space")


def validate_job(job: Job, known_drivers: Collection[str] | None, limits: Limits = DEFAULT_LIMITS) -> None:
    """Raise :class:`ValidationError` listing every problem as ``Job.<path>: <what>``.

    Sizes are checked first against ``limits`` (the ``server.limits`` config): an oversized
    collection or string is refused naming the field and the limit, before anything else.
    """
    errs = _bounds(job, limits)
    if errs:
        raise ValidationError("; ".join(errs[:MAX_REPORTED]))
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
    if job.periodic is not None:
        errs.extend(periodic_problems(job.periodic, str(job.type)))
    if job.parameterized_job is not None and not job.dispatched:
        errs.extend(parameterized_problems(job.parameterized_job, str(job.type)))
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
        raise ValidationError("; ".join(errs[:MAX_REPORTED]))


def _bounds(job: Job, lim: Limits) -> list[str]:
    """Collection sizes, string lengths and count against the configured limits."""
    errs: list[str] = []
    check_length(errs, "Job.ID", job.id, lim.max_id_length, "max_id_length")
    check_length(errs, "Job.Name", job.name, lim.max_name_length, "max_name_length")
    check_length(errs, "Job.Namespace", job.namespace, lim.max_name_length, "max_name_length")
    check_length(errs, "Job.Region", job.region, lim.max_name_length, "max_name_length")
    check_length(errs, "Job.NodePool", job.node_pool, lim.max_name_length, "max_name_length")
    check_size(errs, "Job.Datacenters", job.datacenters, lim.max_datacenters, "max_datacenters")
    for i, dc in enumerate(job.datacenters[: lim.max_datacenters]):
        check_length(errs, f"Job.Datacenters[{i}]", dc, lim.max_name_length, "max_name_length")
    check_size(errs, "Job.Constraints", job.constraints, lim.max_constraints, "max_constraints")
    check_meta(errs, "Job.Meta", job.meta, lim)
    check_size(errs, "Job.TaskGroups", job.task_groups, lim.max_task_groups, "max_task_groups")
    for i, tg in enumerate(job.task_groups[: lim.max_task_groups]):
        path = f"Job.TaskGroups[{i}]"
        check_length(errs, f"{path}.Name", tg.name, lim.max_name_length, "max_name_length")
        if tg.count > lim.max_group_count:
            errs.append(
                f"{path}.Count: {tg.count} exceeds the limit of {lim.max_group_count} (max_group_count)"
            )
        check_size(errs, f"{path}.Constraints", tg.constraints, lim.max_constraints, "max_constraints")
        check_meta(errs, f"{path}.Meta", tg.meta, lim)
        check_size(errs, f"{path}.Tasks", tg.tasks, lim.max_tasks_per_group, "max_tasks_per_group")
        for j, task in enumerate(tg.tasks[: lim.max_tasks_per_group]):
            tpath = f"{path}.Tasks[{j}]"
            check_length(errs, f"{tpath}.Name", task.name, lim.max_name_length, "max_name_length")
            check_length(errs, f"{tpath}.Driver", task.driver, lim.max_name_length, "max_name_length")
            check_size(errs, f"{tpath}.Constraints", task.constraints, lim.max_constraints, "max_constraints")
            check_meta(errs, f"{tpath}.Meta", task.meta, lim)
            check_meta(errs, f"{tpath}.Env", task.env, lim)
    return errs


def _group(errs: list[str], path: str, tg: TaskGroup, job_type: str, drivers: Collection[str] | None) -> None:
    if not tg.name:
        errs.append(f"{path}.Name: missing task group name")
    if tg.count < 0:
        errs.append(f"{path}.Count: must be >= 0, got {tg.count}")
    if job_type in ("system", "sysbatch") and tg.count > 1:
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
    if tg.migrate is not None:
        if job_type == "service":
            errs.extend(f"{path}.Migrate.{p}" for p in tg.migrate.problems())
        else:
            errs.append(f"{path}.Migrate: job type {job_type!r} does not allow a migrate block")
    if tg.scaling is not None:
        errs.extend(f"{path}.Scaling.{p}" for p in tg.scaling.problems(tg.count))
    errs.extend(f"{path}.{p}" for p in group_problems(tg))
    if tg.ephemeral_disk.size_mb < 0:
        errs.append(f"{path}.EphemeralDisk.SizeMB: must be >= 0")
    elif tg.ephemeral_disk.size_mb > MAX_DISK_MB:
        errs.append(
            f"{path}.EphemeralDisk.SizeMB: maximum value is {MAX_DISK_MB}; got {tg.ephemeral_disk.size_mb}"
        )
    if not tg.tasks:
        errs.append(f"{path}.Tasks: missing tasks for task group {tg.name!r}")
    labels: set[str] = set()
    statics: set[int] = set()
    errs.extend(network_problems(f"{path}.Networks", tg.networks, labels, statics))
    for j, task in enumerate(tg.tasks):
        errs.extend(
            network_problems(
                f"{path}.Tasks[{j}].Resources.Networks", task.resources.networks, labels, statics
            )
        )
    errs.extend(service_problems(f"{path}.Services", tg.services, labels))
    for j, task in enumerate(tg.tasks):
        errs.extend(service_problems(f"{path}.Tasks[{j}].Services", task.services, labels))
    names: set[str] = set()
    leaders = 0
    for j, task in enumerate(tg.tasks):
        tpath = f"{path}.Tasks[{j}]"
        if task.name in names:
            errs.append(f"{tpath}.Name: duplicate task name {task.name!r}")
        names.add(task.name)
        leaders += task.leader
        _task(errs, tpath, task, drivers)
        if task.lifecycle is not None:
            errs.extend(f"{tpath}.Lifecycle.{p}" for p in task.lifecycle.problems())
        errs.extend(mount_problems(f"{tpath}.VolumeMounts", task.volume_mounts, tg.volumes))
    errs.extend(volume_problems(f"{path}.Volumes", tg.volumes))
    if leaders > 1:
        errs.append(f"{path}.Tasks: only one task may be marked as leader")
    if tg.tasks and all(t.lifecycle is not None for t in tg.tasks):
        errs.append(f"{path}.Tasks: task group {tg.name!r} must have at least one main task")


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
    for name, value, top in (
        ("CPU", res.cpu, MAX_CPU_MHZ),
        ("MemoryMB", res.memory_mb, MAX_MEMORY_MB),
        ("MemoryMaxMB", res.memory_max_mb, MAX_MEMORY_MB),
        ("DiskMB", res.disk_mb, MAX_DISK_MB),
        ("Cores", res.cores, MAX_CORES),
    ):
        if value > top:
            errs.append(f"{path}.Resources.{name}: maximum value is {top}; got {value}")
    if res.disk_mb < 0:
        errs.append(f"{path}.Resources.DiskMB: must be >= 0")
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
    if task.dispatch_payload is not None and payload_file_problem(task.dispatch_payload):
        errs.append(f"{path}.DispatchPayload.File: {payload_file_problem(task.dispatch_payload)}")


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
